#!/usr/bin/env bash
# Builds the tests' S3-compatible server (hack/tools/s3server: gofakes3 behind a SigV4 check) once
# per version of its go.sum into the cache dir. Prints the binary's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

mod="$here/tools/s3server"
version=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" | sha256sum | cut -c1-12)
cache=${EXEC_PROXY_CACHE:-$HOME/.cache/exec-proxy}
bin="$cache/s3server/$version/s3server"
if [[ -x $bin ]]; then
  log "s3server $version: cached at $bin"
  echo "$bin"
  exit 0
fi
mkdir -p "$(dirname "$bin")"
log "building s3server $version from hack/tools/s3server (gofakes3; first time only: ~1 min on 2 shared cores)"
(cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .) \
  || die "building s3server failed (needs the Go module proxy)"
mv "$bin.tmp" "$bin"
log "s3server built: $bin"
echo "$bin"
