#!/usr/bin/env bash
# demo.sh: `make demo`. Starts the local cluster with exec-proxy, runs one kubectl exec through the
# aggregated route to show it works, and prints how to try more. `make demo-down` stops it all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/hack/cluster/env.sh"

[[ $(id -u) -eq 0 ]] || die "make demo needs root: it runs containerd, runc and kubelets on this machine"
log "exec-proxy demo: a local cluster (etcd, kube-apiserver, two kubelets on containerd) with exec-proxy"
log "the first run installs missing Debian packages and builds kube-apiserver and kubelet (about 10 minutes); later runs take seconds"
"$ROOT/hack/cluster/up.sh"

export KUBECONFIG=$KCFG/admin.kubeconfig
kubectl=$(kubectl_bin)
server=$(grep -o 'server: "[^"]*"' "$KUBECONFIG" | cut -d'"' -f2)
log "showing it works: kubectl exec through $server"
echo "\$ kubectl exec demo -c main -- sh -c 'echo hello from \$(hostname), uid \$(id -u)'" >&2
"$kubectl" exec demo -c main -- sh -c 'echo hello from $(hostname), uid $(id -u)' ||
  die "kubectl exec through exec-proxy failed: see $LOGS/exec-proxy.log and $LOGS/kube-apiserver.log"
grep '"Session ended"' "$LOGS/exec-proxy.log" | tail -1 >&2

cat <<TXT

exec-proxy is running. Its kubeconfigs point kubectl at kube-apiserver's aggregated route:
  server: $server

  export KUBECONFIG=$KCFG/admin.kubeconfig
  export PATH=$(dirname "$kubectl"):\$PATH; alias kubectl=$(basename "$kubectl")

Try:
  kubectl exec -it demo -- sh                       # a shell in pod demo/demo (container main)
  kubectl exec demo -c sidecar -- cat /tmp/whoami   # the second container
  kubectl attach -i echo                            # pod demo/echo echoes each line you type
  kubectl port-forward demo 8080:8080 & curl -s localhost:8080/   # busybox httpd in demo
  kubectl cp demo:/etc/hostname /tmp/hostname -c main
Other users: KUBECONFIG=$KCFG/{ns-user,viewer,nobody}.kubeconfig (ns-user may exec in demo only,
viewer may get pods/exec but not create it, nobody may do nothing); *-direct.kubeconfig bypass exec-proxy.

Session audit (audit.k8s.io/v1 Events: start, end with exit code and bytes per stream, refused):
  tail -f $LOGS/exec-proxy-audit.log
  and one log line per session: grep '"Session ended"' $LOGS/exec-proxy.log
Recordings of TTY sessions (asciicast v2): ls $CLUSTER_DIR/recordings; asciinema play FILE
Metrics (exec-proxy serves them itself, authorized by kube-apiserver's RBAC):
  curl -s --cacert $PKI/ca.crt --cert $PKI/cluster-admin.crt --key $PKI/cluster-admin.key https://127.0.0.1:$EXEC_PROXY_PORT/metrics | grep ^execproxy_
Stop everything: make demo-down
TXT
