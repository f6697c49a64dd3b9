#!/usr/bin/env bash
# Cross-builds kubectl-execproxy for each of PLATFORMS into reproducible archives in DIST_DIR
# (default _output/dist): kubectl-execproxy_VERSION_OS_ARCH.tar.gz with the binary and LICENSE,
# SHA256SUMS, and krew's plugin manifest execproxy.yaml whose URIs are KREW_BASE_URL/ARCHIVE.
# VERSION defaults to git describe's (v0.0.0-DATE-COMMIT before the first tag); SOURCE_DATE_EPOCH,
# every archived file's mtime, to the last commit's time. The same commit gives the same bytes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"
cd "$here/.."

dist=${DIST_DIR:-_output/dist}
platforms=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}
dirty=$([[ -z $(git status --porcelain --untracked-files=no) ]] || echo -dirty)
# krew wants semver with a leading v; a pseudo-version (as Go's) where no tag is.
version=${VERSION:-$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null \
  || echo "v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)$dirty")}
base_url=${KREW_BASE_URL:-https://github.com/exec-proxy/exec-proxy/releases/download/$version}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
log "kubectl-execproxy $version for ${platforms// /, } into $dist (mtimes $(date -u -d "@$SOURCE_DATE_EPOCH" +%FT%TZ))"

rm -rf "$dist"
mkdir -p "$dist/.stage"
for platform in $platforms; do
  goos=${platform%/*} goarch=${platform#*/}
  bin=kubectl-execproxy
  [[ $goos == windows ]] && bin=kubectl-execproxy.exe
  stage="$dist/.stage/${goos}_$goarch"
  mkdir -p "$stage"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "-s -w" -o "$stage/$bin" ./cmd/kubectl-execproxy \
    || die "building kubectl-execproxy for $platform failed"
  cp LICENSE "$stage/LICENSE"
  # Whatever the umask and the builder's uid: fixed modes, owners and mtimes, names in a fixed order,
  # and gzip without a name or time stamp.
  chmod 0755 "$stage/$bin"
  chmod 0644 "$stage/LICENSE"
  archive="kubectl-execproxy_${version}_${goos}_$goarch.tar.gz"
  tar --format=ustar --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$stage" -cf - "$bin" LICENSE | gzip -9 -n >"$dist/$archive"
  log "$archive: $(du -h "$dist/$archive" | cut -f1)"
done
rm -rf "$dist/.stage"
(cd "$dist" && sha256sum kubectl-execproxy_*.tar.gz >SHA256SUMS)
go run ./hack/krew-manifest -dir "$dist" -version "$version" -base-url "$base_url"
log "done: $dist/SHA256SUMS and $dist/execproxy.yaml (uri $base_url/...)"
