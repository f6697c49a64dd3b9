package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/), only the fields written here.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// sbom is the SPDX document of the Go binary at path: its main module, the Go standard library it
// was built with, and every module compiled in (the replacement where go.mod replaces one), from the
// build information the Go linker embeds, as `go version -m` prints it.
// The main module's version is version where Go stamped none ("(devel)": no VCS information).
func sbom(path, platform, version string, created time.Time) ([]byte, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Go build information of %s: %w", path, err)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		bi.Main.Version = version
	}
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])

	main := spdxPackage{
		Name: bi.Main.Path, SPDXID: spdxID(bi.Main.Path), VersionInfo: bi.Main.Version,
		DownloadLocation: "NOASSERTION", PrimaryPurpose: "APPLICATION",
		Checksums:    []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: digest}},
		ExternalRefs: []spdxExternalRef{purlRef(bi.Main.Path, bi.Main.Version)},
	}
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: fmt.Sprintf("%s %s %s", bi.Path, bi.Main.Version, platform),
		// Unique per binary, yet the same for the same bytes: the binary's digest names it.
		DocumentNamespace: "https://" + bi.Main.Path + "/spdx/" + digest,
		CreationInfo: spdxCreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + bi.Main.Path + "/hack/image"},
		},
		Packages: []spdxPackage{main, {
			Name: "stdlib", SPDXID: spdxID("stdlib"), VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/",
			ExternalRefs: []spdxExternalRef{purlRef("stdlib", bi.GoVersion)},
		}},
		Relationships: []spdxRelationship{
			{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: main.SPDXID},
			{Element: main.SPDXID, Type: "DEPENDS_ON", Related: spdxID("stdlib")},
		},
	}
	for _, dep := range bi.Deps {
		m := module(dep)
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: m.Path, SPDXID: spdxID(m.Path), VersionInfo: m.Version, DownloadLocation: "NOASSERTION",
			ExternalRefs: []spdxExternalRef{purlRef(m.Path, m.Version)},
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: main.SPDXID, Type: "DEPENDS_ON", Related: spdxID(m.Path)})
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return append(out, '\n'), nil
}

// module is the module whose code is in the binary: a replacement's, where go.mod replaces dep.
func module(dep *debug.Module) *debug.Module {
	if dep.Replace != nil {
		return dep.Replace
	}
	return dep
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// spdxID is an SPDX identifier for a module path: only letters, digits, '.' and '-' are allowed.
func spdxID(path string) string {
	return "SPDXRef-Package-" + notIDChar.ReplaceAllString(path, "-")
}

func purlRef(path, version string) spdxExternalRef {
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: purl(path, version)}
}

// purl is the package URL of a Go module (https://github.com/package-url/purl-spec, type golang):
// pkg:golang/ then the module path's segments and @version, each percent-encoded.
func purl(path, version string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		segments[i] = purlEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segments, "/")
	if version != "" && version != "(devel)" {
		p += "@" + purlEscape(version)
	}
	return p
}

// purlEscape percent-encodes all but the characters the purl spec leaves bare in a segment.
func purlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
