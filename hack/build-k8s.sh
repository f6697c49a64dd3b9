#!/usr/bin/env bash
# Builds kube-apiserver and kubelet from the k8s.io/kubernetes Go module pinned in hack/k8s/go.mod,
# once per version, into a cache dir. Prints the bin dir on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

version=$(cd "$here/k8s" && go list -m -f "{{.Version}}" k8s.io/kubernetes)
cache=${EXEC_PROXY_CACHE:-$HOME/.cache/exec-proxy}
bin="$cache/k8s/$version"
mkdir -p "$bin"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitTreeState=clean"

for cmd in kube-apiserver kubelet; do
  if [[ -x "$bin/$cmd" ]]; then
    log "$cmd $version: cached at $bin/$cmd"
    continue
  fi
  log "building $cmd $version from the Go module (first time only: kube-apiserver takes ~7 min on 2 cores, kubelet ~2 min)"
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") \
    || die "building $cmd failed (needs the Go module proxy and ~6 GB of disk for the build cache)"
  mv "$bin/$cmd.tmp" "$bin/$cmd"
  log "$cmd built: $bin/$cmd"
done
echo "$bin"
