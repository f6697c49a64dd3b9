#!/usr/bin/env bash
# deploy-certs.sh KUBELET_CA_FILE: for clusters without cert-manager. Makes a CA and a serving
# certificate for exec-proxy.execproxy-system.svc, stores them as the Secret exec-proxy-serving,
# stores the kubelets' CA as the ConfigMap kubelet-ca, and fills the APIService's caBundle once it
# exists. Run it before and after `kubectl apply -k deploy/`; it keeps a CA it made before.
# CERT_DIR (default ./execproxy-certs) keeps the CA key: guard it, or delete it after.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/log.sh"
[[ $# -eq 1 && -r $1 ]] || die "usage: $0 KUBELET_CA_FILE (the CA that signed the kubelets' serving certificates)"
kubelet_ca=$1
ns=execproxy-system svc=exec-proxy
dir=${CERT_DIR:-./execproxy-certs}
kubectl=${KUBECTL:-kubectl}
mkdir -p "$dir" && chmod 700 "$dir"

if [[ ! -f $dir/ca.key ]]; then
  log "making a CA in $dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=exec-proxy-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi
log "making a serving certificate for $svc.$ns.svc"
openssl req -newkey rsa:2048 -nodes -subj "/CN=$svc.$ns.svc" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
  "$svc" "$svc" "$ns" "$svc" "$ns" "$svc" "$ns" >"$dir/ext.cnf"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 365 \
  -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null

log "storing the Secret $ns/exec-proxy-serving and the ConfigMap $ns/kubelet-ca"
"$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
# ca.crt: the replicas verify each other with it (--peer-certificate-authority).
"$kubectl" -n "$ns" create secret generic exec-proxy-serving --type=kubernetes.io/tls \
  --from-file=tls.crt="$dir/tls.crt" --from-file=tls.key="$dir/tls.key" --from-file=ca.crt="$dir/ca.crt" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" -n "$ns" create configmap kubelet-ca --from-file=ca.crt="$kubelet_ca" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

if "$kubectl" get apiservice v1alpha1.execproxy.dev >/dev/null 2>&1; then
  log "filling the caBundle of APIService v1alpha1.execproxy.dev"
  "$kubectl" patch apiservice v1alpha1.execproxy.dev --type merge \
    -p "{\"spec\":{\"caBundle\":\"$(base64 -w0 <"$dir/ca.crt")\"}}" >/dev/null
else
  log "next: kubectl apply -k deploy/, then run this again to fill the APIService's caBundle"
fi
