#!/usr/bin/env bash
# Builds the two local images (no registry is reachable here) as OCI layout tarballs, once:
#   registry.local/pause:local    a static pause binary
#   registry.local/busybox:local  busybox-static with its applets, httpd content for port-forward tests
set -euo pipefail
. "$(dirname "$0")/env.sh"
out=$CLUSTER_DIR/images
mkdir -p "$out"
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "unsupported machine $(uname -m)" ;; esac

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# oci_image NAME ROOTFS ENTRYPOINT_JSON: writes $out/NAME.tar from the directory ROOTFS.
oci_image() {
  local name=$1 rootfs=$2 entry=$3 work; work=$(mktemp -d)
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
  local ld; ld=$(sha "$work/layer.tar"); local ls; ls=$(size "$work/layer.tar")
  mv "$work/layer.tar" "$work/blobs/sha256/$ld"
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin:/usr/bin:/sbin"],"Entrypoint":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$entry" "$ld" >"$work/config.json"
  local cd; cd=$(sha "$work/config.json"); local cs; cs=$(size "$work/config.json")
  mv "$work/config.json" "$work/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cd" "$cs" "$ld" "$ls" >"$work/manifest.json"
  local md; md=$(sha "$work/manifest.json"); local ms; ms=$(size "$work/manifest.json")
  mv "$work/manifest.json" "$work/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"registry.local/%s:local","org.opencontainers.image.ref.name":"local"}}]}' \
    "$md" "$ms" "$name" >"$work/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$work" -cf "$out/$name.tar.tmp" oci-layout index.json blobs
  mv "$out/$name.tar.tmp" "$out/$name.tar"
  rm -rf "$work"
  log "image registry.local/$name:local built ($out/$name.tar)"
}

if [[ ! -f $out/pause.tar ]]; then
  root=$(mktemp -d)
  gcc -static -O2 -o "$root/pause" "$(dirname "$0")/images/pause.c" || die "gcc -static failed (apt: gcc libc6-dev)"
  oci_image pause "$root" '["/pause"]'
  rm -rf "$root"
fi

if [[ ! -f $out/busybox.tar ]]; then
  bb=$(command -v busybox) || die "busybox not found (apt: busybox-static)"
  file -b "$bb" 2>/dev/null | grep -q dynamic && die "$bb is not static (apt: busybox-static)"
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,root,www,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for applet in $("$bb" --list); do [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
  echo "hello from exec-proxy's demo pod" >"$root/www/index.html"
  oci_image busybox "$root" '["/bin/sh"]'
  rm -rf "$root"
fi
