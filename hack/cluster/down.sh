#!/usr/bin/env bash
# down.sh: stops everything up.sh started and leaves nothing running, mounted or in cgroups.
# Keeps certificates and images in .cluster/ (delete it for a clean slate); --purge removes state too.
set -euo pipefail
here=$(dirname "$0")
. "$here/env.sh"
[[ -d $CLUSTER_DIR ]] || { log "nothing to stop"; exit 0; }
"$here/exec-proxy.sh" down
stop_pid in-cluster-follow
"$here/s3.sh" down
for n in "${NODES[@]}"; do "$here/node.sh" down "$n"; done
"$here/control-plane.sh" down
rmdir /run/containerd/s /run/containerd/fifo 2>/dev/null || true
if [[ ${1:-} == --purge ]]; then
  rm -rf "$CLUSTER_DIR"
else
  rm -rf "$CLUSTER_DIR/etcd" "${NODES[@]/#/$CLUSTER_DIR/}" "$CLUSTER_DIR/versions"
fi
log "cluster down"
