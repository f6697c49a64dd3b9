#!/usr/bin/env bash
# exec-proxy.sh up|down: runs bin/exec-proxy against the local cluster and registers its APIService.
# EXEC_PROXY_REPLICA=N (default 1) runs another replica: port EXEC_PROXY_PORT+N-1, its own logs, audit
# log and recordings. Replicas find each other by their leases in execproxy-system; kube-apiserver
# reaches replica 1 only (an ExternalName Service), as if the others were behind it.
# EXEC_PROXY_RECORDING_BUCKET=1 keeps recordings in the S3 server of hack/cluster/s3.sh (started
# here), uploaded every EXEC_PROXY_RECORDING_UPLOAD_INTERVAL (default 1s); the recording dirs are then
# spools, their files gone once uploaded.
set -euo pipefail
. "$(dirname "$0")/env.sh"
EXEC_PROXY_BIN=${EXEC_PROXY_BIN:-$ROOT/bin/exec-proxy}
replica=${EXEC_PROXY_REPLICA:-1}
name=exec-proxy; [[ $replica == 1 ]] || name=exec-proxy-$replica
port=$(( EXEC_PROXY_PORT + replica - 1 ))

up() {
  [[ -x $EXEC_PROXY_BIN ]] || die "$EXEC_PROXY_BIN not found (make build)"
  write_kubeconfig "$KCFG/exec-proxy.kubeconfig" "$APISERVER_URL" exec-proxy
  mkdir -p "$CLUSTER_DIR/recordings"
  [[ $replica == 1 ]] || mkdir -p "$CLUSTER_DIR/recordings-$replica"
  if is_running "$name" && [[ $EXEC_PROXY_BIN -nt $RUN/$name.pid ]]; then
    log "$name: binary rebuilt since it started, restarting"; down
  fi
  local bucket=()
  if [[ ${EXEC_PROXY_RECORDING_BUCKET:-} == 1 ]]; then
    "$(dirname "$0")/s3.sh" up
    set -a; . "$CLUSTER_DIR/s3-credentials"; set +a # the S3 driver's standard environment
    bucket=(--recording-bucket "s3://$S3_BUCKET?endpoint=http://127.0.0.1:$S3_PORT&region=us-east-1&use_path_style=true&disable_https=true"
      --recording-upload-interval "${EXEC_PROXY_RECORDING_UPLOAD_INTERVAL:-1s}")
  fi
  start "$name" "$LOGS/$name.log" "$EXEC_PROXY_BIN" \
    --bind-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$PKI/exec-proxy-serving.crt" --tls-private-key-file "$PKI/exec-proxy-serving.key" \
    --kubeconfig "$KCFG/exec-proxy.kubeconfig" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/exec-proxy.crt" --kubelet-client-key "$PKI/exec-proxy.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --session-audit-log-path "$LOGS/$name-audit.log" \
    --recording-dir "$CLUSTER_DIR/recordings$([[ $replica == 1 ]] || echo "-$replica")" \
    --peer-namespace execproxy-system --peer-advertise-address 127.0.0.1 \
    --peer-certificate-authority "$PKI/ca.crt" --replica-name "replica-$replica" \
    --shutdown-grace-period 5s \
    "${bucket[@]}" \
    ${EXEC_PROXY_EXTRA_ARGS:-}
  WAIT_PROCESS=$name wait_for "$name ready" 60 curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$port/readyz" ||
    die "$name not ready: see $LOGS/$name.log"
  [[ $replica == 1 ]] || return 0
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: exec-proxy, namespace: execproxy-system}
spec: {type: ExternalName, externalName: localhost}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.execproxy.dev}
spec:
  group: execproxy.dev
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 100
  service: {name: exec-proxy, namespace: execproxy-system, port: $EXEC_PROXY_PORT}
  caBundle: $(base64 -w0 "$PKI/ca.crt")
YAML
  wait_for "APIService v1alpha1.execproxy.dev Available" 60 apiservice_available ||
    die "APIService not Available: $(kc get apiservice v1alpha1.execproxy.dev -o jsonpath='{.status.conditions[0].message}')"
}

down() { stop_pid "$name"; }

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: exec-proxy.sh up|down" ;;
esac
