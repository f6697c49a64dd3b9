#!/usr/bin/env bash
# kubelet-sandbox.sh DIR KUBELET ARGS...: run inside `unshare --mount`: hides the machine's kernel
# tunables and iptables from the kubelet, then execs it.
set -euo pipefail
dir=$1; shift
mkdir -p "$dir/sysctl"
mount --make-rprivate /proc # the copies stay in this mount namespace, whatever the machine's /proc is
for f in kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes vm/overcommit_memory vm/panic_on_oom; do
  [[ -e /proc/sys/$f ]] || continue
  copy=$dir/sysctl/${f//\//.}
  cat "/proc/sys/$f" >"$copy"
  mount --bind "$copy" "/proc/sys/$f"
done
PATH=/usr/local/bin:/usr/bin:/bin exec "$@"
