#!/usr/bin/env bash
# Builds exec-proxy's image for each of PLATFORMS (default linux/amd64 linux/arm64) without a
# container daemon: static binaries (CGO_ENABLED=0, -trimpath), then
# hack/image (go-containerregistry, its own Go module) makes one image per platform, their OCI index
# and SBOMs: IMAGE_DIR (default _output/image)/exec-proxy.oci.tar, an OCI image layout, and
# exec-proxy_OS_ARCH.spdx.json. VERSION (the tag) defaults as make dist's; IMAGE_NAME to
# ghcr.io/exec-proxy/exec-proxy; every time stamp is the last commit's time (SOURCE_DATE_EPOCH).
# The same commit gives the same bytes. Prints the index's digest on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"
cd "$here/.."

out=${IMAGE_DIR:-_output/image}
platforms=${PLATFORMS:-linux/amd64 linux/arm64}
dirty=$([[ -z $(git status --porcelain --untracked-files=no) ]] || echo -dirty)
version=${VERSION:-$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null \
  || echo "v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)$dirty")}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
log "exec-proxy image $version for ${platforms// /, } into $out (time stamps $(date -u -d "@$SOURCE_DATE_EPOCH" +%FT%TZ))"

mkdir -p "$out/bin"
for platform in $platforms; do
  goos=${platform%/*} goarch=${platform#*/}
  log "building exec-proxy for $platform"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "-s -w" \
    -o "$out/bin/exec-proxy_${goos}_$goarch" ./cmd/exec-proxy || die "building exec-proxy for $platform failed"
done
log "building hack/image (go-containerregistry)"
CGO_ENABLED=0 go -C hack/image build -trimpath -o "$(realpath "$out")/bin/image" . \
  || die "building hack/image failed (needs the Go module proxy the first time)"
log "writing the images, their index and SBOMs"
digest=$("$out/bin/image" -bin-dir "$out/bin" -platforms "$(tr ' ' , <<<"$platforms")" -out "$out/exec-proxy.oci.tar" \
  -name "${IMAGE_NAME:-ghcr.io/exec-proxy/exec-proxy}" -version "$version" -revision "$(git rev-parse HEAD)" \
  -created "$SOURCE_DATE_EPOCH") || die "hack/image failed"
log "done: $out/exec-proxy.oci.tar ($(du -h "$out/exec-proxy.oci.tar" | cut -f1)), index $digest, tag $version"
echo "$digest"
