#!/usr/bin/env bash
# up.sh: the whole local cluster (etcd, kube-apiserver, two nodes with containerd and a real kubelet,
# demo pods and users) and exec-proxy registered as an APIService. Idempotent: running parts are kept.
set -euo pipefail
here=$(dirname "$0")
. "$here/env.sh"
[[ $(id -u) -eq 0 ]] || die "the local cluster needs root (containerd, runc, cgroups, mounts)"

log "1/8 system packages"; "$ROOT/hack/install-deps.sh"
log "2/8 kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION, kubelets ${NODE_K8S_VERSION[*]} ${NODE_FEATURE_GATES[*]} (built once from k8s.io/kubernetes, cached; the first build of a version takes ~10 min)"
for v in $(printf '%s\n' "$K8S_VERSION" "${NODE_K8S_VERSION[@]}" | sort -u); do k8s_bin "$v" >/dev/null; done
K8S_COMMANDS="kube-controller-manager kube-scheduler" k8s_bin "$K8S_VERSION" >/dev/null
K8S_BIN=$(k8s_bin "$K8S_VERSION"); export K8S_BIN
asked=$(printf 'K8S_VERSION=%s\nNODE1_K8S_VERSION=%s\nNODE2_K8S_VERSION=%s\nNODE1_KUBELET_FEATURE_GATES=%s\nNODE2_KUBELET_FEATURE_GATES=%s\n' \
  "$K8S_VERSION" "${NODE_K8S_VERSION[node1]}" "${NODE_K8S_VERSION[node2]}" "${NODE_FEATURE_GATES[node1]}" "${NODE_FEATURE_GATES[node2]}")
# up.sh keeps what runs: a running cluster of other versions would be kept under the new versions' name.
if is_running kube-apiserver && [[ -f $CLUSTER_DIR/versions && $(cat "$CLUSTER_DIR/versions") != "$asked" ]]; then
  die "a cluster of other versions is running ($(tr '\n' ' ' <"$CLUSTER_DIR/versions")): stop it first with hack/cluster/down.sh"
fi
mkdir -p "$CLUSTER_DIR"
# A new cluster starts with new logs (the e2e scans them all); the last cluster's stay in logs.prev.
if ! is_running kube-apiserver && [[ -d $LOGS ]]; then rm -rf "$LOGS.prev" && mv "$LOGS" "$LOGS.prev"; fi
echo "$asked" >"$CLUSTER_DIR/versions"
log "3/8 exec-proxy"; make -C "$ROOT" -s build
log "4/8 certificates and images"; "$here/pki.sh"; "$here/images.sh"
log "5/8 etcd and kube-apiserver"; "$here/control-plane.sh" up
apply_cluster_objects
for n in demo team-b; do # the controller manager makes them; pods are refused until it has
  wait_for "service account $n/default" 60 kc -n "$n" get serviceaccount default || die "no service account $n/default: see $LOGS/kube-controller-manager.log"
done
for u in "${USERS[@]}"; do
  write_kubeconfig "$KCFG/$u.kubeconfig" "$APISERVER_URL$ROUTE" "user-$u"      # through exec-proxy
  write_kubeconfig "$KCFG/$u-direct.kubeconfig" "$APISERVER_URL" "user-$u"     # kube-apiserver's own path
  write_kubeconfig "$KCFG/$u-legacy.kubeconfig" "$APISERVER_URL$LEGACY_ROUTE" "user-$u" # the route's old path
done
log "6/8 nodes"; for n in "${NODES[@]}"; do "$here/node.sh" up "$n"; done
log "7/8 demo pods"
kc apply -f "$here/manifests/pods.yaml" >/dev/null
wait_for "pods Running" 120 pods_running || { kc get pods -A -o wide >&2; die "demo pods not Running: see $LOGS/kubelet-*.log"; }
log "8/8 exec-proxy"; "$here/exec-proxy.sh" up
log "cluster up: KUBECONFIG=$KCFG/admin.kubeconfig (users: ${USERS[*]}; *-direct.kubeconfig skip exec-proxy)"
