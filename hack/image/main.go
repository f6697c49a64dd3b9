// Command image builds exec-proxy's multi-platform image without a container daemon or a base image
// to pull: per platform, a distroless-like base layer it writes itself (root and nonroot in
// /etc/passwd and /etc/group, /etc/nsswitch.conf, /tmp, /home/nonroot; no shell), a layer with the
// binary at /exec-proxy and one with its SPDX SBOM at /sbom.spdx.json; an OCI image index of the
// platforms; all as an OCI image layout in one tar file. Every time stamp is -created and every
// file is owned by root, so the same binaries give the same bytes. `make image` runs it.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonroot is distroless's unprivileged user and group, as the Deployment's securityContext runs it.
const nonroot = 65532

type options struct {
	binDir   string // exec-proxy_OS_ARCH for each platform
	out      string // the OCI layout's tar file; SBOMs are written beside it
	name     string // repository the layout names the index by, for ctr import
	version  string
	revision string
	source   string
	created  time.Time
}

func main() {
	var o options
	var platforms string
	var epoch int64
	flag.StringVar(&o.binDir, "bin-dir", "", "directory with exec-proxy_OS_ARCH for each platform")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated OS/ARCH")
	flag.StringVar(&o.out, "out", "_output/image/exec-proxy.oci.tar", "the OCI layout's tar file")
	flag.StringVar(&o.name, "name", "ghcr.io/exec-proxy/exec-proxy", "the image's repository")
	flag.StringVar(&o.version, "version", "", "the image's tag and org.opencontainers.image.version")
	flag.StringVar(&o.revision, "revision", "", "the commit (org.opencontainers.image.revision)")
	flag.StringVar(&o.source, "source", "https://github.com/exec-proxy/exec-proxy", "org.opencontainers.image.source")
	flag.Int64Var(&epoch, "created", 0, "every time stamp, in seconds since the epoch: the last commit's time")
	flag.Parse()
	if o.binDir == "" || o.version == "" || o.revision == "" || epoch == 0 {
		fmt.Fprintln(os.Stderr, "image: -bin-dir, -version, -revision and -created are required")
		os.Exit(2)
	}
	o.created = time.Unix(epoch, 0).UTC()
	digest, err := build(o, strings.Split(platforms, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

// build writes the layout's tar file and the SBOMs, and returns the index's digest.
func build(o options, platforms []string) (v1.Hash, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, platform := range platforms {
		goos, arch, ok := strings.Cut(platform, "/")
		if !ok {
			return v1.Hash{}, fmt.Errorf("platform %q is not OS/ARCH", platform)
		}
		bin := filepath.Join(o.binDir, "exec-proxy_"+goos+"_"+arch)
		doc, err := sbom(bin, platform, o.version, o.created)
		if err != nil {
			return v1.Hash{}, err
		}
		sbomFile := strings.TrimSuffix(o.out, ".oci.tar") + "_" + goos + "_" + arch + ".spdx.json"
		if err := os.WriteFile(sbomFile, doc, 0o644); err != nil {
			return v1.Hash{}, fmt.Errorf("writing the SBOM: %w", err)
		}
		img, err := image(o, goos, arch, bin, doc)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: arch}},
		})
	}
	idx = mutate.Annotations(idx, labels(o)).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest of the index: %w", err)
	}
	if err := writeLayout(o, idx); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

func labels(o options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.created":  o.created.Format(time.RFC3339),
	}
}

func image(o options, goos, arch, bin string, sbomDoc []byte) (v1.Image, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	layers := []struct {
		files     []file
		createdBy string
	}{
		{baseFiles(), "hack/image: distroless-like base (passwd, group, nsswitch.conf, tmp, home/nonroot)"},
		{[]file{{name: "exec-proxy", mode: 0o755, data: binary}}, "hack/image: COPY exec-proxy_" + goos + "_" + arch + " /exec-proxy"},
		{[]file{{name: "sbom.spdx.json", mode: 0o644, data: sbomDoc}}, "hack/image: SPDX SBOM of /exec-proxy"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		layer, err := layerOf(l.files, o.created)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: layer, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: o.created}, CreatedBy: l.createdBy},
		})
		if err != nil {
			return nil, fmt.Errorf("adding a layer: %w", err)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = goos, arch, v1.Time{Time: o.created}
	cfg.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	cfg.Config.Entrypoint = []string{"/exec-proxy"}
	cfg.Config.Labels = labels(o)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	return img, nil
}

// file is one entry of a layer: a directory where data is nil and mode has fs.ModeDir.
type file struct {
	name     string
	mode     fs.FileMode
	uid, gid int
	data     []byte
}

// baseFiles are distroless's static image's accounts and the files Go's resolver and os.TempDir
// read; distroless's CA certificates and time zones are left out (nothing in exec-proxy needs the
// system roots: the kubelet's and webhooks' CAs are configured).
func baseFiles() []file {
	dir := func(name string, mode fs.FileMode, owner int) file {
		return file{name: name, mode: fs.ModeDir | mode, uid: owner, gid: owner}
	}
	text := func(name, s string) file { return file{name: name, mode: 0o644, data: []byte(s)} }
	return []file{
		dir("etc", 0o755, 0),
		text("etc/group", "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"),
		text("etc/nsswitch.conf", "hosts: files dns\n"),
		text("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, nonroot),
		dir("root", 0o700, 0),
		dir("tmp", fs.ModeSticky|0o777, 0),
	}
}

// layerOf is a gzipped tar layer of files, in name order, each with mtime t.
func layerOf(files []file, t time.Time) (v1.Layer, error) {
	b, err := tarOf(files, t)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// tarOf is a tar file of files, in name order, each with mtime t.
func tarOf(files []file, t time.Time) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), Uid: f.uid, Gid: f.gid, ModTime: t, Format: tar.FormatPAX}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000 // c_ISVTX
		}
		if f.mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}

// writeLayout writes the OCI image layout of idx, named for containerd (io.containerd.image.name,
// the whole reference) and for OCI tools (org.opencontainers.image.ref.name, the tag), as a tar file.
func writeLayout(o options, idx v1.ImageIndex) error {
	dir, err := os.MkdirTemp(filepath.Dir(o.out), ".layout-")
	if err != nil {
		return fmt.Errorf("layout directory: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          o.name + ":" + o.version,
		"org.opencontainers.image.ref.name": o.version,
	}))
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	return tarDir(dir, o.out, o.created)
}

// tarDir writes dir's files, in name order, with mtime t, owned by root, as the tar file out.
func tarDir(dir, out string, t time.Time) error {
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			files = append(files, file{name: filepath.ToSlash(rel), mode: fs.ModeDir | 0o755})
			return nil
		}
		data, err := os.ReadFile(path)
		files = append(files, file{name: filepath.ToSlash(rel), mode: 0o644, data: data})
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the layout: %w", err)
	}
	b, err := tarOf(files, t)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return os.Rename(out+".tmp", out)
}
