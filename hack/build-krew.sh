#!/usr/bin/env bash
# Builds krew (kubectl-krew) and krew's manifest validator (validate-krew-manifest) from the
# sigs.k8s.io/krew module pinned in hack/krew/go.mod, once, into a cache dir. Prints the bin dir on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

mod="$here/krew"
version=$(cd "$mod" && go list -m -f "{{.Version}}" sigs.k8s.io/krew)
cache=${EXEC_PROXY_CACHE:-$HOME/.cache/exec-proxy}
bin="$cache/krew/$version"
mkdir -p "$bin"

# No version stamp (-X of krew's internal/version): krew then counts as a development build and
# never asks GitHub for a newer release, which this machine could not reach.
for pair in kubectl-krew:cmd/krew validate-krew-manifest:cmd/validate-krew-manifest; do
  name=${pair%%:*} pkg=sigs.k8s.io/krew/${pair#*:}
  if [[ -x "$bin/$name" ]]; then
    log "$name $version: cached at $bin/$name"
    continue
  fi
  log "building $name $version from the Go module (first time only: about a minute)"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$bin/$name.tmp" "$pkg") \
    || die "building $name $version failed (needs the Go module proxy)"
  mv "$bin/$name.tmp" "$bin/$name"
  log "$name built: $bin/$name"
done
echo "$bin"
