#!/usr/bin/env bash
# exec-proxy.sh up|down: runs bin/exec-proxy against the local cluster and registers its APIService.
set -euo pipefail
. "$(dirname "$0")/env.sh"
EXEC_PROXY_BIN=${EXEC_PROXY_BIN:-$ROOT/bin/exec-proxy}

up() {
  [[ -x $EXEC_PROXY_BIN ]] || die "$EXEC_PROXY_BIN not found (make build)"
  write_kubeconfig "$KCFG/exec-proxy.kubeconfig" "$APISERVER_URL" exec-proxy
  mkdir -p "$CLUSTER_DIR/recordings"
  if is_running exec-proxy && [[ $EXEC_PROXY_BIN -nt $RUN/exec-proxy.pid ]]; then
    log "exec-proxy: binary rebuilt since it started, restarting"; down
  fi
  start exec-proxy "$LOGS/exec-proxy.log" "$EXEC_PROXY_BIN" \
    --bind-address 127.0.0.1 --secure-port "$EXEC_PROXY_PORT" \
    --tls-cert-file "$PKI/exec-proxy-serving.crt" --tls-private-key-file "$PKI/exec-proxy-serving.key" \
    --kubeconfig "$KCFG/exec-proxy.kubeconfig" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/exec-proxy.crt" --kubelet-client-key "$PKI/exec-proxy.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --session-audit-log-path "$LOGS/exec-proxy-audit.log" --recording-dir "$CLUSTER_DIR/recordings" \
    --shutdown-grace-period 5s \
    ${EXEC_PROXY_EXTRA_ARGS:-}
  WAIT_PROCESS=exec-proxy wait_for "exec-proxy ready" 60 curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$EXEC_PROXY_PORT/readyz" ||
    die "exec-proxy not ready: see $LOGS/exec-proxy.log"
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

apiservice_available() {
  [[ $(kc get apiservice v1alpha1.execproxy.dev -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]]
}

down() { stop_pid exec-proxy; }

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: exec-proxy.sh up|down" ;;
esac
