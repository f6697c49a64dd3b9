// Package krewmanifest writes the krew plugin manifest of kubectl-execproxy (plugin execproxy) from
// the release archives that make dist builds, with each archive's real sha256.
package krewmanifest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

const (
	// PluginName is the plugin's name in a krew index: kubectl krew install execproxy.
	PluginName = "execproxy"
	// Binary is the executable in each archive (Binary+".exe" on windows).
	Binary = "kubectl-execproxy"
	// SumsFile lists each archive's sha256 in the format of sha256sum.
	SumsFile = "SHA256SUMS"
	// Homepage is the project's page that the manifest points krew users to.
	Homepage = "https://github.com/exec-proxy/exec-proxy"

	apiVersion = "krew.googlecontainertools.github.com/v1alpha2"
	license    = "LICENSE"
)

// Platform is one os/arch pair, in GOOS and GOARCH's words (krew's selectors use the same ones).
type Platform struct {
	OS   string
	Arch string
}

// Bin is the executable's name inside the platform's archive.
func (p Platform) Bin() string {
	if p.OS == "windows" {
		return Binary + ".exe"
	}
	return Binary
}

// ArchiveName is the name of the archive of version for p: kubectl-execproxy_VERSION_OS_ARCH.tar.gz.
func ArchiveName(version string, p Platform) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", Binary, version, p.OS, p.Arch)
}

// parseArchiveName is ArchiveName's inverse, for archives of version.
func parseArchiveName(version, name string) (Platform, bool) {
	rest, ok := strings.CutPrefix(name, Binary+"_"+version+"_")
	if !ok {
		return Platform{}, false
	}
	rest, ok = strings.CutSuffix(rest, ".tar.gz")
	if !ok {
		return Platform{}, false
	}
	goos, goarch, ok := strings.Cut(rest, "_")
	if !ok || goos == "" || goarch == "" || strings.Contains(goarch, "_") {
		return Platform{}, false
	}
	return Platform{OS: goos, Arch: goarch}, true
}

// Archive is one platform's release archive.
type Archive struct {
	Platform
	Name   string // file name, relative to the release's base URL
	SHA256 string // hex
}

var sumLine = regexp.MustCompile(`^([0-9a-f]{64}) [ *](\S+)$`)

// ReadArchives reads dir's SHA256SUMS and returns its archives of version in the file's order, after
// hashing each archive again: a sum that is not the archive's own is an error, not a manifest.
func ReadArchives(dir, version string) ([]Archive, error) {
	f, err := os.Open(filepath.Join(dir, SumsFile))
	if err != nil {
		return nil, fmt.Errorf("reading the archives' sums: %w", err)
	}
	defer f.Close()
	var archives []Archive
	seen := map[Platform]string{}
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		m := sumLine.FindStringSubmatch(scanner.Text())
		if m == nil {
			return nil, fmt.Errorf("%s line %d: not \"SHA256  NAME\": %q", SumsFile, line, scanner.Text())
		}
		sum, name := m[1], m[2]
		p, ok := parseArchiveName(version, name)
		if !ok {
			return nil, fmt.Errorf("%s line %d: %q is not named %s", SumsFile, line, name, ArchiveName(version, Platform{OS: "OS", Arch: "ARCH"}))
		}
		if other, dup := seen[p]; dup {
			return nil, fmt.Errorf("%s line %d: %s/%s has two archives, %s and %s", SumsFile, line, p.OS, p.Arch, other, name)
		}
		seen[p] = name
		actual, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if actual != sum {
			return nil, fmt.Errorf("%s line %d: %s has sha256 %s, not %s", SumsFile, line, name, actual, sum)
		}
		archives = append(archives, Archive{Platform: p, Name: name, SHA256: sum})
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", SumsFile, err)
	}
	if len(archives) == 0 {
		return nil, fmt.Errorf("%s lists no archive", SumsFile)
	}
	return archives, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing an archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// The manifest's schema: krew's index.Plugin (sigs.k8s.io/krew/pkg/index), apiVersion v1alpha2.
type plugin struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   metadata   `json:"metadata"`
	Spec       pluginSpec `json:"spec"`
}

type metadata struct {
	Name string `json:"name"`
}

type pluginSpec struct {
	Version          string     `json:"version"`
	Homepage         string     `json:"homepage"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description"`
	Caveats          string     `json:"caveats"`
	Platforms        []platform `json:"platforms"`
}

type platform struct {
	Selector selector        `json:"selector"`
	URI      string          `json:"uri"`
	SHA256   string          `json:"sha256"`
	Files    []fileOperation `json:"files"`
	Bin      string          `json:"bin"`
}

type selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type fileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

const (
	shortDescription = "Audited exec, attach, port-forward and cp through exec-proxy"
	description      = `Manages sessions through exec-proxy, an aggregated API server that relays
kubectl exec, attach, port-forward and cp to the kubelet after the user's own
RBAC check, and audits and records every session.

  kubectl execproxy setup       adds a context whose sessions go through exec-proxy
  kubectl execproxy sessions    lists live sessions: user, pod, command, age, bytes
  kubectl execproxy kill ID     ends a session
  kubectl execproxy lock USER   ends a user's sessions and refuses new ones
  kubectl execproxy replay ID   plays a session's recording
  kubectl execproxy coverage    who can get around exec-proxy in this cluster
`
	caveats = `This plugin needs exec-proxy installed in the cluster (the APIService
v1alpha1.execproxy.dev): see the homepage for deploy/. Then run
  kubectl execproxy setup
to add a context whose exec, attach, port-forward and cp go through it.
`
)

// Manifest is the krew plugin manifest (execproxy.yaml) of version for archives, each downloaded
// from baseURL + "/" + its name.
func Manifest(version, baseURL string, archives []Archive) ([]byte, error) {
	if len(archives) == 0 {
		return nil, errors.New("no archive to put in the manifest")
	}
	p := plugin{
		APIVersion: apiVersion,
		Kind:       "Plugin",
		Metadata:   metadata{Name: PluginName},
		Spec: pluginSpec{
			Version:          version,
			Homepage:         Homepage,
			ShortDescription: shortDescription,
			Description:      description,
			Caveats:          caveats,
		},
	}
	base := strings.TrimSuffix(baseURL, "/")
	for _, a := range archives {
		p.Spec.Platforms = append(p.Spec.Platforms, platform{
			Selector: selector{MatchLabels: map[string]string{"os": a.OS, "arch": a.Arch}},
			URI:      base + "/" + a.Name,
			SHA256:   a.SHA256,
			Files:    []fileOperation{{From: a.Bin(), To: "."}, {From: license, To: "."}},
			Bin:      a.Bin(),
		})
	}
	out, err := yaml.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding the krew manifest: %w", err)
	}
	return out, nil
}
