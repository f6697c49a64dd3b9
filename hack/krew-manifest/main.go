// krew-manifest writes the krew plugin manifest of kubectl-execproxy (execproxy.yaml) from the
// archives that a SHA256SUMS file lists, for hack/dist.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/internal/krewmanifest"
)

func main() {
	dir := flag.String("dir", "_output/dist", "the directory of the archives and their "+krewmanifest.SumsFile)
	version := flag.String("version", "", "the release's version (semver with a leading v, as krew requires)")
	baseURL := flag.String("base-url", "", "the URL each archive is downloaded from, less the archive's name")
	out := flag.String("o", "", "the manifest's path (default DIR/"+krewmanifest.PluginName+".yaml)")
	flag.Parse()
	if *version == "" || *baseURL == "" {
		klog.ErrorS(nil, "-version and -base-url are required")
		os.Exit(2)
	}
	if *out == "" {
		*out = filepath.Join(*dir, krewmanifest.PluginName+".yaml")
	}
	if err := run(*dir, *version, *baseURL, *out); err != nil {
		klog.ErrorS(err, "writing the krew manifest failed")
		os.Exit(1)
	}
}

func run(dir, version, baseURL, out string) error {
	archives, err := krewmanifest.ReadArchives(dir, version)
	if err != nil {
		return err
	}
	manifest, err := krewmanifest.Manifest(version, baseURL, archives)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, manifest, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	klog.InfoS("wrote the krew manifest", "path", out, "version", version, "platforms", len(archives))
	return nil
}
