//go:build image

// Package image checks what hack/image.sh (make image) builds, reading the OCI layout with the
// standard library only (not with go-containerregistry, which built it): `make test-image`.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type index struct {
	Manifests []descriptor `json:"manifests"`
}

type manifest struct {
	Config descriptor   `json:"config"`
	Layers []descriptor `json:"layers"`
}

type config struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string
		Entrypoint []string
	} `json:"config"`
}

type entry struct {
	header *tar.Header
	data   []byte
}

// build runs hack/image.sh into a new directory; it returns the index's digest and the directory.
func build(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("hack/image.sh")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "IMAGE_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/image.sh: %v", err)
	}
	return strings.TrimSpace(string(out)), dir
}

func readTar(t *testing.T, r io.Reader) map[string]entry {
	t.Helper()
	files := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("reading a tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", h.Name, err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = entry{h, data}
	}
}

func TestImage(t *testing.T) {
	digest, dir := build(t)
	digest2, dir2 := build(t)
	if digest != digest2 {
		t.Errorf("two builds of one commit: index %s, then %s", digest, digest2)
	}
	tarball, err := os.ReadFile(filepath.Join(dir, "exec-proxy.oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if tarball2, err := os.ReadFile(filepath.Join(dir2, "exec-proxy.oci.tar")); err != nil || !bytes.Equal(tarball, tarball2) {
		t.Errorf("two builds of one commit wrote different OCI tar files (%v)", err)
	}

	layout := readTar(t, bytes.NewReader(tarball))
	blob := func(digest string, v any) []byte {
		t.Helper()
		e, ok := layout["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("blob %s is not in the layout", digest)
		}
		if v != nil {
			if err := json.Unmarshal(e.data, v); err != nil {
				t.Fatalf("blob %s: %v", digest, err)
			}
		}
		return e.data
	}
	var top index
	if err := json.Unmarshal(layout["index.json"].data, &top); err != nil || len(top.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests, want 1 (the image index)", err, len(top.Manifests))
	}
	if top.Manifests[0].Digest != digest {
		t.Errorf("index.json names %s, hack/image.sh printed %s", top.Manifests[0].Digest, digest)
	}
	var idx index
	blob(top.Manifests[0].Digest, &idx)

	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			t.Errorf("manifest %s has no platform", m.Digest)
			continue
		}
		platform := m.Platform.OS + "/" + m.Platform.Architecture
		platforms = append(platforms, platform)
		t.Run(platform, func(t *testing.T) { checkImage(t, dir, platform, blob, m.Digest) })
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("the index's platforms are %v, want %v", platforms, want)
	}
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func checkImage(t *testing.T, dir, platform string, blob func(string, any) []byte, digest string) {
	var m manifest
	blob(digest, &m)
	var cfg config
	blob(m.Config.Digest, &cfg)
	if got := cfg.OS + "/" + cfg.Architecture; got != platform {
		t.Errorf("config's platform is %s, the index's %s", got, platform)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("User is %q, want 65532:65532 (nonroot)", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/exec-proxy"}) {
		t.Errorf("Entrypoint is %q, want [/exec-proxy]", cfg.Config.Entrypoint)
	}

	files := map[string]entry{} // the image's file system: later layers over earlier ones
	for _, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(blob(l.Digest, nil)))
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		for name, e := range readTar(t, zr) {
			if path.Base(name) == "sh" || strings.HasSuffix(name, "bin/sh") {
				t.Errorf("layer %s has a shell: %s", l.Digest, name)
			}
			files[name] = e
		}
	}

	bin, ok := files["exec-proxy"]
	if !ok {
		t.Fatal("no /exec-proxy")
	}
	f, err := elf.NewFile(bytes.NewReader(bin.data))
	if err != nil {
		t.Fatalf("/exec-proxy: %v", err)
	}
	arch := cfg.Architecture // the index's platform is checked against it above
	if f.Machine != elfMachine[arch] {
		t.Errorf("/exec-proxy is for %v, want %v", f.Machine, elfMachine[arch])
	}
	if !strings.Contains(string(files["etc/passwd"].data), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot 65532:\n%s", files["etc/passwd"].data)
	}
	if !strings.Contains(string(files["etc/group"].data), "\nnonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot 65532:\n%s", files["etc/group"].data)
	}
	if tmp := files["tmp"].header; tmp == nil || tmp.Typeflag != tar.TypeDir || tmp.Mode != 0o1777 {
		t.Errorf("/tmp is not a directory of mode 1777: %+v", tmp)
	}
	for name, e := range files {
		if owner := e.header.Uid; owner != 0 && name != "home/nonroot" {
			t.Errorf("/%s is owned by %d, not root", name, owner)
		}
	}

	beside, err := os.ReadFile(filepath.Join(dir, "exec-proxy_linux_"+arch+".spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["sbom.spdx.json"].data, beside) {
		t.Error("/sbom.spdx.json differs from the SBOM written beside the OCI tar file")
	}
	checkSBOM(t, beside)
}

func checkSBOM(t *testing.T, doc []byte) {
	var sbom struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			ExternalRefs []struct {
				ReferenceType    string `json:"referenceType"`
				ReferenceLocator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc, &sbom); err != nil {
		t.Fatalf("SBOM: %v", err)
	}
	if sbom.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion %q", sbom.SPDXVersion)
	}
	versions := map[string]string{}
	for _, p := range sbom.Packages {
		versions[p.Name] = p.VersionInfo
		want := "pkg:golang/" + p.Name + "@" + strings.ReplaceAll(p.VersionInfo, "+", "%2B")
		if len(p.ExternalRefs) != 1 || p.ExternalRefs[0].ReferenceType != "purl" || p.ExternalRefs[0].ReferenceLocator != want {
			t.Errorf("package %s's purl: %+v, want %s", p.Name, p.ExternalRefs, want)
		}
	}
	if v := versions["github.com/exec-proxy/exec-proxy"]; v == "" {
		t.Error("the SBOM lists no github.com/exec-proxy/exec-proxy (the main module)")
	}
	for _, mod := range []string{"k8s.io/apiserver", "k8s.io/apimachinery", "github.com/moby/spdystream"} {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", mod, err)
		}
		if want := strings.TrimSpace(string(out)); versions[mod] != want {
			t.Errorf("the SBOM has %s %q, go.mod %q", mod, versions[mod], want)
		}
	}
}
