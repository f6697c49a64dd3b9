#!/usr/bin/env bash
# in-cluster.sh up|upgrade TAG|uninstall|down: exec-proxy installed in the local cluster as an admin installs it:
# its image (make image's, for this machine's platform) imported into both nodes' containerd, the
# certificates from hack/deploy-certs.sh, and deploy/ applied through the overlay hack/cluster/in-cluster
# (host networking and the rest the local network needs; its comment says why). It takes the place of
# the exec-proxy processes exec-proxy.sh runs on the host, and down gives that place back.
#   up           install; serves the route once the APIService is Available
#   upgrade TAG  a second build of the image, tagged TAG, rolled out (one pod surging onto the other node)
#   uninstall    kubectl delete -k, waited for until nothing of it is left
#   down         uninstall, then the host's exec-proxy again
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
ns=execproxy-system
overlay=$here/in-cluster
certs=$CLUSTER_DIR/in-cluster-certs
image=registry.local/exec-proxy

# build_image TAG: make image for this platform only, as $image:TAG, into both nodes' containerd.
build_image() {
  local dir=$CLUSTER_DIR/in-cluster-image/$1 arch
  case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "unsupported machine $(uname -m)" ;; esac
  IMAGE_DIR=$dir IMAGE_NAME=$image VERSION=$1 PLATFORMS=linux/$arch "$ROOT/hack/image.sh" >/dev/null
  for n in "${NODES[@]}"; do
    ctr -a "$CLUSTER_DIR/$n/containerd.sock" -n k8s.io images import "$dir/exec-proxy.oci.tar" >/dev/null ||
      die "importing $image:$1 into containerd $n failed"
  done
  log "image $image:$1 in the nodes' containerd"
}

# follow: the local stand-in for the Service's EndpointSlice. Points the ExternalName Service at a
# ready pod that is not terminating, as kube-apiserver's aggregator would pick an endpoint.
follow() {
  local current="" ready
  local tmpl='{{range .items}}{{$ip := .status.podIP}}{{if not .metadata.deletionTimestamp}}{{range .status.conditions}}{{if and (eq .type "Ready") (eq .status "True")}}{{$ip}}{{"\n"}}{{end}}{{end}}{{end}}{{end}}'
  while sleep 0.5; do
    ready=$(kc -n $ns get pods -l app.kubernetes.io/name=exec-proxy -o go-template="$tmpl" 2>/dev/null) || continue
    [[ -n $ready ]] || continue
    grep -qxF "$current" <<<"$ready" && [[ -n $current ]] && continue
    current=$(head -1 <<<"$ready")
    kc -n $ns patch service exec-proxy --type merge -p "{\"spec\":{\"externalName\":\"$current\"}}" >/dev/null &&
      log "service exec-proxy: $current"
  done
}

kube() { KUBECONFIG=$KCFG/cluster-admin.kubeconfig "$(kubectl_bin)" "$@"; }

certificates() {
  CERT_DIR=$certs KUBECONFIG=$KCFG/cluster-admin.kubeconfig KUBECTL=$(kubectl_bin) KUBELET_CLIENT_CA_CERT=$PKI/ca.crt KUBELET_CLIENT_CA_KEY=$PKI/ca.key \
    "$ROOT/hack/deploy-certs.sh" "$PKI/ca.crt"
}

up() {
  log "1/5 the image"; build_image local
  log "2/5 the host's exec-proxy stopped, its APIService and Service removed"
  "$here/exec-proxy.sh" down; EXEC_PROXY_REPLICA=2 "$here/exec-proxy.sh" down
  kc delete apiservice v1alpha1.execproxy.dev --ignore-not-found >/dev/null
  kc -n $ns delete service exec-proxy --ignore-not-found >/dev/null
  kc -n $ns delete leases --all >/dev/null
  log "3/5 certificates (hack/deploy-certs.sh)"; certificates
  log "4/5 kubectl apply -k hack/cluster/in-cluster"
  kube apply -k "$overlay" >/dev/null
  certificates # the APIService exists now: its caBundle
  start in-cluster-follow "$LOGS/in-cluster-follow.log" "$here/in-cluster.sh" follow
  log "5/5 rollout"
  kube -n $ns rollout status deployment/exec-proxy --timeout 180s >&2 ||
    die "exec-proxy's Deployment did not roll out: $(kc -n $ns get pods -o wide 2>&1)"
  wait_for "APIService v1alpha1.execproxy.dev Available" 60 apiservice_available ||
    die "APIService not Available: $(kc get apiservice v1alpha1.execproxy.dev -o jsonpath='{.status.conditions[0].message}')"
}

upgrade() {
  [[ -n ${1:-} ]] || die "usage: in-cluster.sh upgrade TAG"
  build_image "$1"
  kube -n $ns set image deployment/exec-proxy "exec-proxy=$image:$1" >/dev/null
  kube -n $ns rollout status deployment/exec-proxy --timeout 180s >&2 ||
    die "the upgrade to $image:$1 did not roll out: $(kc -n $ns get pods -o wide 2>&1)"
}

uninstall() {
  log "kubectl delete -k hack/cluster/in-cluster (waits for the namespace to go)"
  kube delete -k "$overlay" --ignore-not-found --wait --timeout 180s >/dev/null ||
    die "uninstall did not finish: $(kc get ns $ns -o jsonpath='{.status.conditions}' 2>&1)"
  stop_pid in-cluster-follow
  local n img
  for n in "${NODES[@]}"; do # the images in-cluster.sh imported
    for img in $(ctr -a "$CLUSTER_DIR/$n/containerd.sock" -n k8s.io images ls -q 2>/dev/null | grep "^$image:" || true); do
      ctr -a "$CLUSTER_DIR/$n/containerd.sock" -n k8s.io images rm "$img" >/dev/null
    done
  done
}

down() {
  uninstall
  log "the host's exec-proxy again"
  apply_cluster_objects
  "$here/exec-proxy.sh" up
}

case ${1:-} in
up) up ;;
upgrade) upgrade "${2:-}" ;;
uninstall) uninstall ;;
down) down ;;
follow) follow ;;
*) die "usage: in-cluster.sh up|upgrade TAG|uninstall|down" ;;
esac
