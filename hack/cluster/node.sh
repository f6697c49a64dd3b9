#!/usr/bin/env bash
# node.sh up|down NODE: one node = its own containerd (state, socket, cgroups) and a real kubelet.
set -euo pipefail
. "$(dirname "$0")/env.sh"
action=$1 node=$2
ip=${NODE_IP[$node]:?unknown node $node} port=${NODE_PORT[$node]}
D=$CLUSTER_DIR/$node
sock=$D/containerd.sock
CG_HIERARCHIES=(cpu cpuacct cpuset memory devices freezer blkio pids systemd unified)

cgroup_root() { # the node's cgroup below ours, recorded at first start so down finds it again
  [[ -f $D/cgroup-root ]] || echo "$(my_cgroup)/exec-proxy-$node" >"$D/cgroup-root"
  cat "$D/cgroup-root"
}

make_cgroups() {
  local cg; cg=$(cgroup_root)
  for h in "${CG_HIERARCHIES[@]}"; do
    local base=/sys/fs/cgroup/$h
    [[ -d $base ]] || continue
    local path=$base
    for part in ${cg//\// }; do
      path=$path/$part
      if [[ ! -d $path ]]; then
        mkdir "$path"
        if [[ $h == cpuset ]]; then
          cat "$(dirname "$path")/cpuset.cpus" >"$path/cpuset.cpus"
          cat "$(dirname "$path")/cpuset.mems" >"$path/cpuset.mems"
        fi
      fi
    done
  done
}

write_configs() {
  mkdir -p "$D"/{containerd,kubelet,pod-logs,volume-plugins} "$CLUSTER_DIR/cni/conf" "$CLUSTER_DIR/cni/bin"
  cp "$(dirname "$0")/cni-veth" "$CLUSTER_DIR/cni/bin/execproxy-veth"
  # containerd's CRI always runs the loopback plugin as well.
  [[ -x /usr/lib/cni/loopback ]] || die "/usr/lib/cni/loopback missing (apt: containernetworking-plugins)"
  ln -sf /usr/lib/cni/loopback "$CLUSTER_DIR/cni/bin/loopback"
  echo '{"cniVersion":"0.4.0","name":"execproxy","plugins":[{"type":"execproxy-veth"}]}' \
    >"$CLUSTER_DIR/cni/conf/10-execproxy.conflist"
  : >"$D/resolv.conf"
  cat >"$D/containerd.toml" <<TOML
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.local/pause:local"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CLUSTER_DIR/cni/bin"
    conf_dir = "$CLUSTER_DIR/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$D/runc"
TOML
  cat >"$D/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $port
readOnlyPort: 0
healthzBindAddress: $ip
healthzPort: $(( port - 2 ))
tlsCertFile: $PKI/kubelet-$node-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-$node-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$sock
imageServiceEndpoint: unix://$sock
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: $(cgroup_root)
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
resolvConf: $D/resolv.conf
podLogsDir: $D/pod-logs
volumePluginDir: $D/volume-plugins
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
featureGates: {$(feature_gates "${NODE_FEATURE_GATES[$node]}")}
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
YAML
  write_kubeconfig "$KCFG/kubelet-$node.kubeconfig" "$APISERVER_URL" "kubelet-$node-client"
}

# feature_gates A=false,B=true: the same as YAML map entries (A: false, B: true).
feature_gates() {
  local out=() kv
  IFS=, read -ra kvs <<<"$1"
  for kv in "${kvs[@]}"; do [[ -n $kv ]] && out+=("${kv%%=*}: ${kv#*=}"); done
  local IFS=,; echo "${out[*]}"
}

up() {
  # Run on its own (to restart a kubelet), it finds the cached build as up.sh does.
  # Each node runs its own version's kubelet (NODE_K8S_VERSION in env.sh).
  local bin; bin=$(k8s_bin "${NODE_K8S_VERSION[$node]}")
  [[ -x $bin/kubelet ]] || die "no kubelet at $bin (hack/build-k8s.sh)"
  write_configs
  make_cgroups
  start "containerd-$node" "$LOGS/containerd-$node.log" containerd --config "$D/containerd.toml"
  WAIT_PROCESS=containerd-$node wait_for "containerd $node" 30 ctr -a "$sock" version || die "containerd $node did not start: see $LOGS/containerd-$node.log"
  for img in pause busybox; do
    ctr -a "$sock" -n k8s.io images ls -q | grep -qx "registry.local/$img:local" ||
      ctr -a "$sock" -n k8s.io images import --all-platforms "$CLUSTER_DIR/images/$img.tar" >/dev/null ||
      die "importing $img into containerd $node failed"
  done
  # The kubelet runs in its own mount namespace with private copies of the kernel tunables it
  # would otherwise set machine-wide, and without iptables on its PATH (it then adds no rules). Its
  # root dir is a shared mount, the one that mount namespace shares: the volumes it mounts there
  # (Secrets, service account tokens) must reach containerd, which runs in the machine's.
  findmnt -n "$D/kubelet" >/dev/null || mount --bind "$D/kubelet" "$D/kubelet"
  mount --make-shared "$D/kubelet"
  start "kubelet-$node" "$LOGS/kubelet-$node.log" unshare --mount --propagation unchanged \
    "$(dirname "$0")/kubelet-sandbox.sh" "$D" "$bin/kubelet" \
    --config "$D/kubelet.yaml" --kubeconfig "$KCFG/kubelet-$node.kubeconfig" \
    --root-dir "$D/kubelet" --cert-dir "$D/kubelet/pki" --hostname-override "$ip" --v 1
  # The Node object may still say Ready from before a restart: wait for the kubelet itself.
  WAIT_PROCESS=kubelet-$node wait_for "kubelet $node serving on $ip:$port" 90 kubelet_serving ||
    die "kubelet $node did not start serving: see $LOGS/kubelet-$node.log"
  WAIT_PROCESS=kubelet-$node wait_for "node $ip Ready" 90 node_ready "$ip" || die "node $ip did not become Ready: see $LOGS/kubelet-$node.log"
}

kubelet_serving() { is_running "kubelet-$node" && curl -s -o /dev/null --cacert "$PKI/ca.crt" "https://$ip:$port/healthz"; }

node_ready() { [[ $(kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }

down() {
  stop_pid "kubelet-$node"
  # Containers outlive containerd: kill what runs in the node's cgroups, then the shims.
  if [[ -f $D/cgroup-root ]]; then
    local cg; cg=$(cat "$D/cgroup-root")
    for _ in 1 2 3; do
      find "/sys/fs/cgroup/memory$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      sleep 0.2
    done
  fi
  pkill -9 -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true
  stop_pid "containerd-$node"
  unmount_below "$D"
  remove_cgroups
}

remove_cgroups() {
  [[ -f $D/cgroup-root ]] || return 0
  local cg; cg=$(cat "$D/cgroup-root")
  for h in "${CG_HIERARCHIES[@]}"; do
    [[ -d /sys/fs/cgroup/$h$cg ]] || continue
    find "/sys/fs/cgroup/$h$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d /sys/fs/cgroup/$h$cg ]] && log "warning: cgroup /sys/fs/cgroup/$h$cg could not be removed"
  done
  return 0
}

case $action in
up) up ;;
down) down ;;
*) die "usage: node.sh up|down NODE" ;;
esac
