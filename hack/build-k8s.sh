#!/usr/bin/env bash
# Builds Kubernetes commands from the k8s.io/kubernetes Go module pinned in hack/k8s/$K8S_VERSION/go.mod,
# once per version, into a cache dir. Prints the bin dir on stdout. K8S_VERSION defaults to the local
# cluster's default (hack/k8s/DEFAULT); K8S_COMMANDS (default kube-apiserver, kubelet and kubectl)
# names the ones to build: fewer, such as only the kubectl the e2e runs, or the control plane's
# kube-controller-manager and kube-scheduler.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

version=${K8S_VERSION:-$(cat "$here/k8s/DEFAULT")}
[[ $version == v* ]] || version=v$version
mod="$here/k8s/$version"
[[ -f $mod/go.mod ]] || die "no module for K8S_VERSION=$version: the versions are $(cd "$here/k8s" && ls -d v*/ | tr -d / | xargs)"
pinned=$(cd "$mod" && go list -m -f "{{.Version}}" k8s.io/kubernetes)
[[ $pinned == "$version" ]] || die "$mod/go.mod pins k8s.io/kubernetes $pinned, not $version"
cache=${EXEC_PROXY_CACHE:-$HOME/.cache/exec-proxy}
bin="$cache/k8s/$version"
mkdir -p "$bin"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitTreeState=clean"
# kubectl reports its version from client-go's copy of the version variables.
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitTreeState=clean"

for cmd in ${K8S_COMMANDS:-kube-apiserver kubelet kubectl}; do
  case $cmd in kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubectl) ;; *) die "K8S_COMMANDS: $cmd is not one built here" ;; esac
  if [[ -x "$bin/$cmd" ]]; then
    log "$cmd $version: cached at $bin/$cmd"
    continue
  fi
  log "building $cmd $version from the Go module (first time only: kube-apiserver takes ~7 min on 2 cores, the others ~2-4 min each)"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") \
    || die "building $cmd $version failed (needs the Go module proxy and ~6 GB of disk for the build cache)"
  mv "$bin/$cmd.tmp" "$bin/$cmd"
  log "$cmd built: $bin/$cmd"
done
echo "$bin"
