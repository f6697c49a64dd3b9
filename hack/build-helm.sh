#!/usr/bin/env bash
# Builds helm from the helm.sh/helm/v4 Go module pinned in hack/helm/go.mod, once per version, into
# the cache dir, for the chart's tests (make test-chart, the e2e's TestHelmChart). Prints the
# binary's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

mod="$here/helm"
version=$(cd "$mod" && go list -m -f "{{.Version}}" helm.sh/helm/v4)
cache=${EXEC_PROXY_CACHE:-$HOME/.cache/exec-proxy}
bin="$cache/helm/$version/helm"
if [[ -x $bin ]]; then
  log "helm $version: cached at $bin"
  echo "$bin"
  exit 0
fi
mkdir -p "$(dirname "$bin")"
log "building helm $version from the Go module (first time only: ~9 min on 2 shared cores)"
# The version variables helm's own Makefile sets for a release build: helm version prints them.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.metadata="
ldflags="$ldflags -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" helm.sh/helm/v4/cmd/helm) \
  || die "building helm $version failed (needs the Go module proxy)"
mv "$bin.tmp" "$bin"
log "helm built: $bin"
echo "$bin"
