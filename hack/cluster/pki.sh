#!/usr/bin/env bash
# Creates the cluster's certificates with openssl, once (existing files are kept).
set -euo pipefail
. "$(dirname "$0")/env.sh"
mkdir -p "$PKI"
cd "$PKI"

ca() { # ca NAME CN
  [[ -f $1.crt ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# cert NAME CA SUBJECT USAGE [SANS]: USAGE is serverAuth or clientAuth.
cert() {
  local name=$1 ca=$2 subj=$3 usage=$4 sans=${5:-}
  [[ -f $name.crt ]] && return 0
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 3650 \
    -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

ca ca "exec-proxy-local-cluster-ca"
ca front-proxy-ca "exec-proxy-local-front-proxy-ca"

cert apiserver ca "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:127.0.100.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
[[ -f sa.key ]] || { openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

for n in "${NODES[@]}"; do
  ip=${NODE_IP[$n]}
  cert "kubelet-$n-serving" ca "/O=system:nodes/CN=system:node:$ip" serverAuth "IP:$ip"
  cert "kubelet-$n-client" ca "/O=system:nodes/CN=system:node:$ip" clientAuth
done

# exec-proxy: serving cert for the aggregator (which dials <svc>.<ns>.svc), and its own identity,
# used both against kube-apiserver and, through nodes/proxy, against kubelets.
cert exec-proxy-serving ca "/CN=exec-proxy.execproxy-system.svc" serverAuth \
  "DNS:exec-proxy.execproxy-system.svc,DNS:exec-proxy.execproxy-system.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
cert exec-proxy ca "/CN=system:exec-proxy" clientAuth

# The controller manager and scheduler, by the names kube-apiserver's bootstrap RBAC grants.
cert kube-controller-manager ca "/CN=system:kube-controller-manager" clientAuth
cert kube-scheduler ca "/CN=system:kube-scheduler" clientAuth

cert cluster-admin ca "/O=system:masters/CN=cluster-admin" clientAuth
for u in "${USERS[@]}"; do cert "user-$u" ca "/CN=$u" clientAuth; done
chmod 600 ./*.key
log "certificates: $PKI"
