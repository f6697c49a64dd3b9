package krewmanifest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestArchiveNameRoundTrip(t *testing.T) {
	for _, p := range []Platform{{"linux", "amd64"}, {"darwin", "arm64"}, {"windows", "arm64"}} {
		name := ArchiveName("v1.2.3-4-gabc", p)
		got, ok := parseArchiveName("v1.2.3-4-gabc", name)
		if !ok || got != p {
			t.Errorf("parseArchiveName(%q) = %v, %v; want %v", name, got, ok, p)
		}
	}
	for _, name := range []string{
		"kubectl-execproxy_v1.0.0_linux_amd64.tar.gz", // another version
		"kubectl-execproxy_v1.2.3-4-gabc_linux_amd64.zip",
		"kubectl-execproxy_v1.2.3-4-gabc_linux.tar.gz",
		"kubectl-execproxy_v1.2.3-4-gabc_linux_arm_v7.tar.gz",
		"kubectl-execproxy_v1.2.3-4-gabc__amd64.tar.gz",
	} {
		if p, ok := parseArchiveName("v1.2.3-4-gabc", name); ok {
			t.Errorf("parseArchiveName(%q) = %v, want no platform", name, p)
		}
	}
}

func sumOf(content string) string {
	s := sha256.Sum256([]byte(content))
	return hex.EncodeToString(s[:])
}

func TestReadArchives(t *testing.T) {
	const v = "v0.3.0"
	linux, windows := ArchiveName(v, Platform{"linux", "amd64"}), ArchiveName(v, Platform{"windows", "arm64"})
	files := map[string]string{linux: "linux archive", windows: "windows archive"}
	for _, tc := range []struct {
		name    string
		sums    string
		want    []Archive
		wantErr string
	}{
		{
			name: "sha256sum's text and binary lines",
			sums: sumOf("linux archive") + "  " + linux + "\n" + sumOf("windows archive") + " *" + windows + "\n",
			want: []Archive{
				{Platform{"linux", "amd64"}, linux, sumOf("linux archive")},
				{Platform{"windows", "arm64"}, windows, sumOf("windows archive")},
			},
		},
		{
			name:    "a sum that is not the archive's",
			sums:    sumOf("another archive") + "  " + linux + "\n",
			wantErr: "has sha256 " + sumOf("linux archive"),
		},
		{
			name:    "an archive listed but absent",
			sums:    sumOf("x") + "  " + ArchiveName(v, Platform{"darwin", "arm64"}) + "\n",
			wantErr: "no such file",
		},
		{
			name:    "an archive of another version",
			sums:    sumOf("x") + "  " + ArchiveName("v0.2.0", Platform{"linux", "amd64"}) + "\n",
			wantErr: "is not named kubectl-execproxy_v0.3.0_OS_ARCH.tar.gz",
		},
		{
			name:    "two archives of one platform",
			sums:    sumOf("linux archive") + "  " + linux + "\n" + sumOf("linux archive") + "  " + linux + "\n",
			wantErr: "linux/amd64 has two archives",
		},
		{
			name:    "a line that is not a sum",
			sums:    "abc  " + linux + "\n",
			wantErr: "line 1: not",
		},
		{
			name:    "no archive",
			sums:    "",
			wantErr: "lists no archive",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, SumsFile), []byte(tc.sums), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadArchives(dir, v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("archive %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestManifest(t *testing.T) {
	archives := []Archive{
		{Platform{"linux", "arm64"}, "kubectl-execproxy_v0.3.0_linux_arm64.tar.gz", sumOf("a")},
		{Platform{"windows", "amd64"}, "kubectl-execproxy_v0.3.0_windows_amd64.tar.gz", sumOf("b")},
	}
	out, err := Manifest("v0.3.0", "http://127.0.0.1:8080/dl/", archives)
	if err != nil {
		t.Fatal(err)
	}
	var got plugin
	if err := yaml.UnmarshalStrict(out, &got); err != nil {
		t.Fatalf("the manifest does not read back: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		field     string
		got, want string
	}{
		{"apiVersion", got.APIVersion, "krew.googlecontainertools.github.com/v1alpha2"},
		{"kind", got.Kind, "Plugin"},
		{"metadata.name", got.Metadata.Name, "execproxy"},
		{"spec.version", got.Spec.Version, "v0.3.0"},
		{"spec.homepage", got.Spec.Homepage, Homepage},
		{"platforms[0] os", got.Spec.Platforms[0].Selector.MatchLabels["os"], "linux"},
		{"platforms[0] arch", got.Spec.Platforms[0].Selector.MatchLabels["arch"], "arm64"},
		{"platforms[0] uri", got.Spec.Platforms[0].URI, "http://127.0.0.1:8080/dl/kubectl-execproxy_v0.3.0_linux_arm64.tar.gz"},
		{"platforms[0] sha256", got.Spec.Platforms[0].SHA256, sumOf("a")},
		{"platforms[0] bin", got.Spec.Platforms[0].Bin, "kubectl-execproxy"},
		{"platforms[1] os", got.Spec.Platforms[1].Selector.MatchLabels["os"], "windows"},
		{"platforms[1] sha256", got.Spec.Platforms[1].SHA256, sumOf("b")},
		{"platforms[1] bin", got.Spec.Platforms[1].Bin, "kubectl-execproxy.exe"},
		{"platforms[1] files[0]", got.Spec.Platforms[1].Files[0].From, "kubectl-execproxy.exe"},
		{"platforms[1] files[1]", got.Spec.Platforms[1].Files[1].From, "LICENSE"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.field, tc.got, tc.want)
		}
	}
	if strings.ContainsAny(got.Spec.ShortDescription, "\r\n") || got.Spec.ShortDescription == "" {
		t.Errorf("shortDescription %q: krew wants one line", got.Spec.ShortDescription)
	}
	if !strings.Contains(got.Spec.Caveats, "exec-proxy installed in the cluster") {
		t.Errorf("caveats do not say exec-proxy must be installed: %q", got.Spec.Caveats)
	}

	if _, err := Manifest("v0.3.0", "http://x", nil); err == nil {
		t.Error("a manifest without platforms was written")
	}
}
