#!/usr/bin/env bash
# Installs, from Debian, what the local cluster needs and this machine lacks. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"

# package -> why we need it
declare -A why=(
  [etcd-server]="etcd for kube-apiserver"
  [containerd]="container runtime behind the kubelet"
  [runc]="OCI runtime that runs the containers"
  [containernetworking-plugins]="CNI loopback plugin for pod sandboxes"
  [busybox-static]="the rootfs of the test images"
  [openssl]="cluster certificates"
  [iproute2]="veth pairs for pod network namespaces"
  [tmux]="a real terminal for kubectl exec -it tests"
  [asciinema]="reads session recordings in the e2e tests"
  [gcc]="builds the pause image's static binary"
  [libc6-dev]="static libc for the pause binary"
  [procps]="pkill/pgrep for cluster teardown"
  [curl]="readiness probes of etcd and exec-proxy"
  [util-linux]="unshare for the kubelet's private mount namespace"
  [gnuplot-nox]="draws the benchmark chart (make bench)"
  [prometheus]="promtool checks and tests the alert rules; the e2e's Prometheus scrapes exec-proxy"
)
missing=()
for p in "${!why[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "system packages: all present"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
for p in "${missing[@]}"; do log "installing $p: ${why[$p]}"; done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
# Debian starts the services it installs; the cluster runs its own instances.
for svc in etcd containerd prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done
pkill -u etcd -x etcd 2>/dev/null || true
pkill -u prometheus -x prometheus 2>/dev/null || true
log "installed: ${missing[*]}"
