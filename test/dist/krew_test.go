//go:build dist

// Package dist checks what make dist wrote (DIST_DIR, default _output/dist) with the real krew
// (KREW_BIN: hack/build-krew.sh's bin dir) and the real kubectl (KUBECTL): `make test-dist`.
package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/exec-proxy/exec-proxy/internal/krewmanifest"
)

// manifest is what this test reads of a krew plugin manifest, as krew's index.Plugin reads it.
type manifest struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

type env struct {
	dist     string // make dist's output
	krewBin  string // kubectl-krew and validate-krew-manifest
	kubectl  string
	version  string
	archives []krewmanifest.Archive
}

func setup(t *testing.T) env {
	t.Helper()
	e := env{dist: os.Getenv("DIST_DIR"), krewBin: os.Getenv("KREW_BIN"), kubectl: os.Getenv("KUBECTL")}
	if e.dist == "" {
		e.dist = "../../_output/dist"
	}
	if e.kubectl == "" {
		e.kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
	}
	if e.krewBin == "" {
		t.Fatal("KREW_BIN is not set: run make test-dist (it builds krew with hack/build-krew.sh)")
	}
	for _, f := range []string{filepath.Join(e.krewBin, "kubectl-krew"), filepath.Join(e.krewBin, "validate-krew-manifest"), e.kubectl} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	m := readManifest(t, filepath.Join(e.dist, krewmanifest.PluginName+".yaml"))
	e.version = m.Spec.Version
	var err error
	if e.archives, err = krewmanifest.ReadArchives(e.dist, e.version); err != nil {
		t.Fatalf("make dist's archives: %v", err)
	}
	return e
}

func readManifest(t *testing.T, path string) manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestDist: the archives hold what krew installs, built for their platforms, reproducibly packed,
// and the manifest names each with its real sha256.
func TestDist(t *testing.T) {
	e := setup(t)
	want := map[string]bool{}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, goarch := range []string{"amd64", "arm64"} {
			want[goos+"/"+goarch] = true
		}
	}
	m := readManifest(t, filepath.Join(e.dist, krewmanifest.PluginName+".yaml"))
	if len(m.Spec.Platforms) != len(e.archives) {
		t.Fatalf("the manifest has %d platforms, %s lists %d archives", len(m.Spec.Platforms), krewmanifest.SumsFile, len(e.archives))
	}
	var mtime int64
	for i, a := range e.archives {
		delete(want, a.OS+"/"+a.Arch)
		p := m.Spec.Platforms[i]
		if p.Selector.MatchLabels["os"] != a.OS || p.Selector.MatchLabels["arch"] != a.Arch || p.SHA256 != a.SHA256 ||
			!strings.HasSuffix(p.URI, "/"+a.Name) || p.Bin != a.Bin() {
			t.Errorf("manifest platform %d = %+v, want %s/%s, sha256 %s, uri .../%s, bin %s", i, p, a.OS, a.Arch, a.SHA256, a.Name, a.Bin())
		}
		entries := readArchive(t, filepath.Join(e.dist, a.Name))
		t.Logf("%s: sha256 %s, %d bytes of %s", a.Name, a.SHA256[:12], len(entries[a.Bin()].body), a.Bin())
		for _, tc := range []struct{ name, mode string }{{a.Bin(), "-rwxr-xr-x"}, {"LICENSE", "-rw-r--r--"}} {
			h := entries[tc.name].hdr
			if h == nil {
				t.Errorf("%s has no %s", a.Name, tc.name)
				continue
			}
			if h.FileInfo().Mode().String() != tc.mode || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
				t.Errorf("%s: %s is %s %d:%d (%q:%q), want %s 0:0 and no owner names", a.Name, tc.name, h.FileInfo().Mode(), h.Uid, h.Gid, h.Uname, h.Gname, tc.mode)
			}
			if mtime == 0 {
				mtime = h.ModTime.Unix()
			} else if h.ModTime.Unix() != mtime {
				t.Errorf("%s: %s's mtime is %v, the first file's %v: mtimes are fixed", a.Name, tc.name, h.ModTime.Unix(), mtime)
			}
		}
		if len(entries) != 2 {
			t.Errorf("%s holds %d files, want %s and LICENSE", a.Name, len(entries), a.Bin())
		}
		if got, err := executablePlatform(entries[a.Bin()].body); err != nil || got != a.OS+"/"+a.Arch {
			t.Errorf("%s: %s is an executable for %q (%v), want %s/%s", a.Name, a.Bin(), got, err, a.OS, a.Arch)
		}
	}
	for p := range want {
		t.Errorf("no archive for %s", p)
	}
}

// TestReproducible: hack/dist.sh run again for this machine's platform, with another umask, gives
// the archive make dist gave, byte for byte.
func TestReproducible(t *testing.T) {
	e := setup(t)
	host := slices.IndexFunc(e.archives, func(a krewmanifest.Archive) bool { return a.OS == runtime.GOOS && a.Arch == runtime.GOARCH })
	if host < 0 {
		t.Fatalf("make dist built no archive for this machine's %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	a := e.archives[host]
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "-c", "umask 077 && exec ../../hack/dist.sh")
	cmd.Env = append(os.Environ(), "DIST_DIR="+dir, "PLATFORMS="+a.OS+"/"+a.Arch, "VERSION="+e.version)
	out, err := cmd.CombinedOutput()
	t.Logf("$ umask 077 && DIST_DIR=%s PLATFORMS=%s/%s VERSION=%s hack/dist.sh (%v)\n%s", dir, a.OS, a.Arch, e.version, err, indent(out))
	if err != nil {
		t.Fatal(err)
	}
	again, err := krewmanifest.ReadArchives(dir, e.version)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0] != a {
		t.Errorf("rebuilt: %+v, make dist's: %+v", again, a)
	}
}

type entry struct {
	hdr  *tar.Header
	body []byte
}

func readArchive(t *testing.T, path string) map[string]entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("%s: gzip header has name %q and time %v, want neither", path, zr.Name, zr.ModTime)
	}
	entries := map[string]entry{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		entries[h.Name] = entry{hdr: h, body: body}
	}
}

// executablePlatform is the GOOS/GOARCH that the executable b is for, read from its headers.
func executablePlatform(b []byte) (string, error) {
	r := bytes.NewReader(b)
	if f, err := elf.NewFile(r); err == nil {
		return "linux/" + map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine], nil
	}
	if f, err := macho.NewFile(r); err == nil {
		return "darwin/" + map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu], nil
	}
	if f, err := pe.NewFile(r); err == nil {
		return "windows/" + map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine], nil
	}
	return "", errors.New("neither ELF, Mach-O nor PE")
}

// server serves make dist's archives on loopback and counts the downloads of each.
type server struct {
	*httptest.Server
	mu        sync.Mutex
	downloads map[string]int
}

func serve(t *testing.T, dir string) *server {
	s := &server{downloads: map[string]int{}}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.downloads[strings.TrimPrefix(r.URL.Path, "/")]++
		s.mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) downloaded(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads[name]
}

// writeManifest writes the manifest of archives, downloaded from baseURL, as DIR/execproxy.yaml
// (krew's validator wants the plugin's name as the file's).
func (e env) writeManifest(t *testing.T, dir, baseURL string, archives []krewmanifest.Archive) string {
	t.Helper()
	b, err := krewmanifest.Manifest(e.version, baseURL, archives)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, krewmanifest.PluginName+".yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pathDir is a PATH entry with kubectl (the real one) and kubectl-krew: what krew's validator runs.
func (e env) pathDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"kubectl": e.kubectl, "kubectl-krew": filepath.Join(e.krewBin, "kubectl-krew")} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, environ []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s (%v)\n%s", filepath.Base(name), strings.Join(args, " "), err, indent(out))
	return string(out), err
}

func indent(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return ""
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// TestValidateManifest runs krew's own validator: on make dist's manifest its structure (the release
// URL is not reachable here), and on the same archives served on loopback, an install of every
// platform (KREW_OS, KREW_ARCH) from each archive, LICENSE included.
func TestValidateManifest(t *testing.T) {
	e := setup(t)
	validator := filepath.Join(e.krewBin, "validate-krew-manifest")
	environ := []string{"PATH=" + e.pathDir(t) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}

	t.Log("make dist's manifest, structure only")
	if _, err := run(t, environ, validator, "-manifest", filepath.Join(e.dist, krewmanifest.PluginName+".yaml"), "-skip-install"); err != nil {
		t.Fatalf("krew's validator refused make dist's manifest: %v", err)
	}

	srv := serve(t, e.dist)
	t.Logf("the archives served at %s, a manifest for that URL, every platform installed", srv.URL)
	path := e.writeManifest(t, t.TempDir(), srv.URL, e.archives)
	out, err := run(t, environ, validator, "-manifest", path)
	if err != nil {
		t.Fatalf("krew's validator refused the manifest: %v", err)
	}
	if want := fmt.Sprintf("all %d spec.platforms installed fine", len(e.archives)); !strings.Contains(out, want) {
		t.Errorf("the validator did not say %q", want)
	}
	for _, a := range e.archives {
		if srv.downloaded(a.Name) == 0 {
			t.Errorf("the validator never downloaded %s", a.Name)
		}
	}
}

// TestKrewInstall installs the plugin with `kubectl krew install local/execproxy` from a local
// index (a git repository of plugins/execproxy.yaml) and runs it as `kubectl execproxy`; krew refuses
// an archive whose sha256 is not the manifest's.
func TestKrewInstall(t *testing.T) {
	e := setup(t)
	srv := serve(t, e.dist)
	host := slices.IndexFunc(e.archives, func(a krewmanifest.Archive) bool { return a.OS == runtime.GOOS && a.Arch == runtime.GOARCH })
	if host < 0 {
		t.Fatalf("make dist built no archive for this machine's %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	hostBinary := readArchive(t, filepath.Join(e.dist, e.archives[host].Name))[e.archives[host].Bin()].body

	for _, tc := range []struct {
		name string
		// sha256 is the manifest's sha256 of this machine's archive.
		sha256  string
		wantErr string // krew install's output when it must refuse
	}{
		{name: "the archive's own sha256", sha256: e.archives[host].SHA256},
		{name: "a wrong sha256", sha256: sha256Hex("not the archive"), wantErr: "checksum does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			krewRoot := filepath.Join(tmp, "krew")
			environ := []string{
				"HOME=" + filepath.Join(tmp, "home"),
				"KREW_ROOT=" + krewRoot,
				"KREW_NO_UPGRADE_CHECK=1",
				// kubectl finds plugins on PATH: krew links the ones it installs into KREW_ROOT/bin.
				"PATH=" + filepath.Join(krewRoot, "bin") + ":" + e.pathDir(t) + ":" + os.Getenv("PATH"),
			}
			archives := append([]krewmanifest.Archive(nil), e.archives...)
			archives[host].SHA256 = tc.sha256

			index := filepath.Join(tmp, "index")
			e.writeManifest(t, filepath.Join(index, "plugins"), srv.URL, archives)
			git := []string{"-C", index, "-c", "user.name=test-dist", "-c", "user.email=test-dist@localhost"}
			for _, args := range [][]string{{"init", "-q"}, {"add", "plugins"}, {"commit", "-q", "-m", "execproxy " + e.version}} {
				if _, err := run(t, environ, "git", append(git, args...)...); err != nil {
					t.Fatalf("making the local index: %v", err)
				}
			}
			if _, err := run(t, environ, e.kubectl, "krew", "index", "add", "local", index); err != nil {
				t.Fatalf("kubectl krew index add: %v", err)
			}

			out, err := run(t, environ, e.kubectl, "krew", "install", "local/execproxy")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(out, tc.wantErr) {
					t.Fatalf("kubectl krew install: %v, want it refused with %q", err, tc.wantErr)
				}
				if _, err := os.Lstat(filepath.Join(krewRoot, "bin", krewmanifest.Binary)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("krew refused the plugin but linked it: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("kubectl krew install local/execproxy: %v", err)
			}
			if !strings.Contains(out, "exec-proxy installed in the cluster") {
				t.Error("krew install did not show the caveats")
			}
			if srv.downloaded(e.archives[host].Name) == 0 {
				t.Errorf("krew did not download %s from the loopback server", e.archives[host].Name)
			}
			installed, err := os.ReadFile(filepath.Join(krewRoot, "store", krewmanifest.PluginName, e.version, e.archives[host].Bin()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(installed, hostBinary) {
				t.Errorf("the installed %s is not the archive's", e.archives[host].Bin())
			}
			out, err = run(t, environ, e.kubectl, "plugin", "list")
			if err != nil || !strings.Contains(out, filepath.Join(krewRoot, "bin", krewmanifest.Binary)) {
				t.Errorf("kubectl plugin list: %v, want %s listed", err, filepath.Join(krewRoot, "bin", krewmanifest.Binary))
			}
			out, err = run(t, environ, e.kubectl, "execproxy", "--help")
			if err != nil {
				t.Fatalf("kubectl execproxy --help: %v", err)
			}
			for _, cmd := range []string{"setup", "sessions", "replay"} {
				if !strings.Contains(out, cmd) {
					t.Errorf("kubectl execproxy --help does not list %s", cmd)
				}
			}
		})
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
