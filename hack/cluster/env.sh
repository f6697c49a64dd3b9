# Layout and ports of the local cluster; sourced by the other hack/cluster scripts.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/hack/lib/log.sh"

CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
PKI=$CLUSTER_DIR/pki
LOGS=$CLUSTER_DIR/logs
RUN=$CLUSTER_DIR/run          # pid files
KCFG=$CLUSTER_DIR/kubeconfig  # one kubeconfig per identity

ETCD_PORT=${ETCD_PORT:-23790}
APISERVER_PORT=${APISERVER_PORT:-16443}
EXEC_PROXY_PORT=${EXEC_PROXY_PORT:-18443}
CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT:-16257}
SCHEDULER_PORT=${SCHEDULER_PORT:-16259}
S3_PORT=${S3_PORT:-19000}        # hack/cluster/s3.sh: the recording bucket's S3 server
S3_BUCKET=recordings
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
ROUTE=/apis/execproxy.dev/v1alpha1/routes/kube/proxy # api.RoutePrefix
LEGACY_ROUTE=/apis/execproxy.dev/v1alpha1/kube # api.LegacyRoutePrefix

# Two nodes: different loopback addresses and kubelet ports, each with its own containerd.
NODES=(node1 node2)
declare -A NODE_IP=([node1]=127.0.0.1 [node2]=127.0.0.2)
declare -A NODE_PORT=([node1]=${NODE1_KUBELET_PORT:-10250} [node2]=${NODE2_KUBELET_PORT:-10350})

# Users for RBAC cases: name -> what they may do (see manifests/rbac-users.yaml).
USERS=(admin ns-user viewer nobody)

# Kubernetes versions (hack/k8s/: one Go module each, built once and cached): K8S_VERSION for the
# control plane and by default the kubelets; NODE1_K8S_VERSION, NODE2_K8S_VERSION for one node's
# kubelet (a mixed cluster). up.sh keeps the choice in $CLUSTER_DIR/versions, so that scripts run
# later against the same running cluster (node.sh restarting a kubelet) use the same binaries; a
# cluster no longer running (its kube-apiserver gone) leaves no choice behind.
if [[ -f $CLUSTER_DIR/versions && -z ${K8S_VERSION:-}${NODE1_K8S_VERSION:-}${NODE2_K8S_VERSION:-}${NODE1_KUBELET_FEATURE_GATES:-}${NODE2_KUBELET_FEATURE_GATES:-} ]] &&
  [[ -f $RUN/kube-apiserver.pid ]] && kill -0 "$(cat "$RUN/kube-apiserver.pid")" 2>/dev/null; then
  . "$CLUSTER_DIR/versions"
fi
K8S_VERSION=${K8S_VERSION:-$(cat "$ROOT/hack/k8s/DEFAULT")}
declare -A NODE_K8S_VERSION=([node1]=${NODE1_K8S_VERSION:-$K8S_VERSION} [node2]=${NODE2_K8S_VERSION:-$K8S_VERSION})
# NODE1_KUBELET_FEATURE_GATES, NODE2_KUBELET_FEATURE_GATES: one node's kubelet feature gates
# (A=false,B=true), such as ExtendWebSocketsToKubelet=false for a 1.36 kubelet that does not serve WebSocket.
declare -A NODE_FEATURE_GATES=([node1]=${NODE1_KUBELET_FEATURE_GATES:-} [node2]=${NODE2_KUBELET_FEATURE_GATES:-})
# k8s_bin VERSION: the directory of that version's kube-apiserver, kubelet and kubectl (built if needed).
k8s_bin() { K8S_VERSION=$1 "$ROOT/hack/build-k8s.sh"; }
# The kubectls, kubectl.1.28 and kubectl.1.33, are in KUBECTL_DIR; test/e2e's kubectlBinary reads it too.
KUBECTL_DIR=${KUBECTL_DIR:-/usr/lib/google-cloud-sdk/bin}
kubectl_bin() { echo "${KUBECTL:-$KUBECTL_DIR/kubectl.1.33}"; }
kc() { "$(kubectl_bin)" --kubeconfig "$KCFG/cluster-admin.kubeconfig" "$@"; }

# apply_cluster_objects: the namespaces, users' and the host's exec-proxy's RBAC, the flow schema.
apply_cluster_objects() {
  kc apply -f "$ROOT/hack/cluster/manifests/namespaces.yaml" -f "$ROOT/hack/cluster/manifests/rbac-exec-proxy.yaml" \
    -f "$ROOT/hack/cluster/manifests/rbac-users.yaml" -f "$ROOT/deploy/flowschema.yaml" >/dev/null
}

apiservice_available() {
  [[ $(kc get apiservice v1alpha1.execproxy.dev -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') == True ]]
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND until it succeeds. Gives up early
# when WAIT_PROCESS names a started process that has exited.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    if [[ -n ${WAIT_PROCESS:-} ]] && ! is_running "$WAIT_PROCESS"; then log "$WAIT_PROCESS exited"; return 1; fi
    sleep 0.2
  done
  log "$what: ready"
}

# start NAME LOGFILE COMMAND...: runs COMMAND in its own session, records its pid.
start() {
  local name=$1 logf=$2; shift 2
  if is_running "$name"; then log "$name: already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  mkdir -p "$RUN" "$LOGS"
  setsid "$@" >"$logf" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  log "$name: started (pid $!, log $logf)"
}

is_running() { [[ -f "$RUN/$1.pid" ]] && alive "$(cat "$RUN/$1.pid")"; }

# alive PID: the process exists and has not exited. Nothing may reap our orphans in a container, so
# a zombie counts as exited; but a killed process whose first thread is a zombie while its other
# threads still exit is alive: it still holds its ports and files.
alive() {
  local state threads
  state=$(awk '$1=="State:"{print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  threads=$(awk '$1=="Threads:"{print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state ]] || return 1
  [[ $state != [ZX] ]] || (( ${threads:-0} > 1 ))
}

# my_cgroup: this process's memory cgroup; the nodes' pods go below it, never at a hierarchy root.
my_cgroup() { awk -F: '$2=="memory"{print $3}' /proc/self/cgroup; }

# write_kubeconfig FILE SERVER CERTNAME: a kubeconfig authenticating with $PKI/CERTNAME.{crt,key}.
write_kubeconfig() {
  mkdir -p "$(dirname "$1")"
  cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$2", certificate-authority: "$PKI/ca.crt"}
users:
- name: $3
  user: {client-certificate: "$PKI/$3.crt", client-key: "$PKI/$3.key"}
contexts:
- name: local
  context: {cluster: local, user: $3, namespace: demo}
current-context: local
KUBECONFIG
}

# stop_pid NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local f=$RUN/$1.pid
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "$1: stopped"
  fi
  rm -f "$f"
}

# unmount_below DIR: unmounts everything mounted under DIR, deepest first.
unmount_below() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
  done
}

pods_running() {
  local phases; phases=$(kc get pods -A -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  [[ -n $phases ]] && ! grep -vqx Running <<<"$phases"
}
