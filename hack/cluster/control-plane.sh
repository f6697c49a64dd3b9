#!/usr/bin/env bash
# control-plane.sh up|down: etcd, kube-apiserver (with the aggregation layer), kube-controller-manager
# and kube-scheduler on loopback.
set -euo pipefail
. "$(dirname "$0")/env.sh"

up() {
  K8S_BIN=${K8S_BIN:-$(k8s_bin "$K8S_VERSION")}
  [[ -x $K8S_BIN/kube-apiserver ]] || die "kube-apiserver not found in K8S_BIN=$K8S_BIN (run hack/build-k8s.sh)"
  for c in kube-controller-manager kube-scheduler; do
    [[ -x $K8S_BIN/$c ]] || K8S_COMMANDS=$c k8s_bin "$K8S_VERSION" >/dev/null
  done
  command -v etcd >/dev/null || die "etcd not found (apt: etcd-server; run hack/install-deps.sh)"
  mkdir -p "$CLUSTER_DIR/etcd"
  start etcd "$LOGS/etcd.log" etcd --name local --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "local=http://127.0.0.1:$((ETCD_PORT + 10))" --listen-metrics-urls "" --log-level warn
  WAIT_PROCESS=etcd wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not start: see $LOGS/etcd.log"

  start kube-apiserver "$LOGS/kube-apiserver.log" "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-cluster-ip-range 127.0.100.0/24 --endpoint-reconciler-type none \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --audit-log-path "$LOGS/kube-apiserver-audit.log" --audit-policy-file "$(dirname "$0")/manifests/audit-policy.yaml" \
    --v 1
  write_kubeconfig "$KCFG/cluster-admin.kubeconfig" "$APISERVER_URL" cluster-admin
  WAIT_PROCESS=kube-apiserver wait_for kube-apiserver 60 kc get --raw /readyz || die "kube-apiserver not ready: see $LOGS/kube-apiserver.log"

  # Only the controllers a Deployment, its uninstall and its pods' service account tokens need
  # (in-cluster.sh), and node-lifecycle, which lifts the not-ready taint kubelets register with. Not
  # taint-eviction: the reliability tests stop kubelets, and evictions would delete the demo pods.
  # Each controller acts as its own service account, as in kubeadm.
  write_kubeconfig "$KCFG/kube-controller-manager.kubeconfig" "$APISERVER_URL" kube-controller-manager
  start kube-controller-manager "$LOGS/kube-controller-manager.log" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
    --use-service-account-credentials --root-ca-file "$PKI/ca.crt" \
    --controllers node-lifecycle-controller,deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,disruption-controller,clusterrole-aggregation-controller \
    --v 1
  write_kubeconfig "$KCFG/kube-scheduler.kubeconfig" "$APISERVER_URL" kube-scheduler
  start kube-scheduler "$LOGS/kube-scheduler.log" "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --v 1
  WAIT_PROCESS=kube-controller-manager wait_for kube-controller-manager 60 \
    curl -sfk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" >/dev/null || die "kube-controller-manager not healthy: see $LOGS/kube-controller-manager.log"
  WAIT_PROCESS=kube-scheduler wait_for kube-scheduler 60 \
    curl -sfk "https://127.0.0.1:$SCHEDULER_PORT/healthz" >/dev/null || die "kube-scheduler not healthy: see $LOGS/kube-scheduler.log"
}

down() {
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  stop_pid kube-apiserver
  stop_pid etcd
}

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: control-plane.sh up|down" ;;
esac
