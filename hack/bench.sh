#!/usr/bin/env bash
# make bench: measures exec-proxy against kube-apiserver's own pods/exec path and a direct kubelet
# connection on the local cluster, in one run. BENCH_ARGS pass flags to the program in bench/
# (go run ./bench -h lists them), e.g. BENCH_ARGS="-runs 5 -idle-sessions 1000".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"
cd "$here/.."

log "bench 1/4: raising the open-file limit for the idle-session figure"
# The cluster's processes inherit it; an exec-proxy already running is restarted under it.
ulimit -n "$(ulimit -Hn)" || true
log "open files: $(ulimit -n) (each idle session holds two in exec-proxy and in the kubelet: -idle-sessions 10000 needs a hard limit above ~20,100)"
log "bench 2/4: local cluster"
K8S_VERSION=$(cat hack/k8s/DEFAULT) hack/cluster/up.sh
trap 'log "bench: stopping the cluster"; hack/cluster/down.sh' EXIT
hack/cluster/exec-proxy.sh down >/dev/null && hack/cluster/exec-proxy.sh up >/dev/null
log "bench 3/4: measuring (about three hours with the defaults: throughput ~20 min, keystroke ~20, concurrent ~25, idle ~45, idleexec ~12)"
go run ./bench -out bench ${BENCH_ARGS:-}
# WebSocket to a kubelet that serves it beside one that does not: both kubelets of the newest version,
# node2's with ExtendWebSocketsToKubelet off, so that only how the session reaches it differs.
newest=$(ls hack/k8s | grep '^v' | sort -V | tail -1)
log "bench 4/4: WebSocket to two $newest kubelets, one not serving it (about 5 minutes, and ~10 minutes to build $newest once)"
hack/cluster/down.sh
K8S_VERSION=$newest NODE2_KUBELET_FEATURE_GATES=ExtendWebSocketsToKubelet=false hack/cluster/up.sh
go run ./bench -out bench -parts kubeletws ${BENCH_KUBELETWS_ARGS:-}
