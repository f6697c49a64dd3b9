#!/usr/bin/env bash
# deploy-certs.sh KUBELET_CA_FILE: for clusters without cert-manager. Makes a CA and a serving
# certificate for exec-proxy.execproxy-system.svc, stores them as the Secret exec-proxy-serving,
# stores the kubelets' CA as the ConfigMap kubelet-ca, issues exec-proxy's kubelet client
# certificate (CN=execproxy:kubelet-client) as the Secret exec-proxy-kubelet-client, and fills the
# APIService's caBundle once it exists. Run it before and after `kubectl apply -k deploy/`; it keeps
# the CAs it made before. Run it again to rotate: new keys, same CAs (docs/kubelet-credential.md).
# The kubelet client certificate is signed by KUBELET_CLIENT_CA_CERT and KUBELET_CLIENT_CA_KEY (a CA
# in the kubelets' --client-ca-file bundle; not the cluster CA), or else by a CA made here once,
# kubelet-client-ca.crt, which each kubelet must then trust for client authentication.
# KUBELET_CLIENT_DAYS (default 90) is its lifetime.
# CERT_DIR (default ./execproxy-certs) keeps the CA keys: guard it, or delete it after.
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

client_ca_crt=${KUBELET_CLIENT_CA_CERT:-$dir/kubelet-client-ca.crt}
client_ca_key=${KUBELET_CLIENT_CA_KEY:-$dir/kubelet-client-ca.key}
[[ -z ${KUBELET_CLIENT_CA_CERT:-} && -z ${KUBELET_CLIENT_CA_KEY:-} ]] ||
  [[ -r ${KUBELET_CLIENT_CA_CERT:-} && -r ${KUBELET_CLIENT_CA_KEY:-} ]] ||
  die "KUBELET_CLIENT_CA_CERT and KUBELET_CLIENT_CA_KEY go together, and must be readable files"
if [[ ! -f $client_ca_key ]]; then
  log "making a kubelet client CA in $dir: add kubelet-client-ca.crt to every kubelet's --client-ca-file bundle"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=execproxy-kubelet-client-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$client_ca_key" -out "$client_ca_crt" 2>/dev/null
fi
log "making the kubelet client certificate CN=execproxy:kubelet-client, signed by $client_ca_crt"
openssl req -newkey rsa:2048 -nodes -subj "/CN=execproxy:kubelet-client" \
  -keyout "$dir/kubelet-client.key" -out "$dir/kubelet-client.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$dir/client-ext.cnf"
openssl x509 -req -in "$dir/kubelet-client.csr" -CA "$client_ca_crt" -CAkey "$client_ca_key" -CAcreateserial \
  -CAserial "$dir/kubelet-client-ca.srl" -days "${KUBELET_CLIENT_DAYS:-90}" -extfile "$dir/client-ext.cnf" \
  -out "$dir/kubelet-client.crt" 2>/dev/null
rm -f "$dir/kubelet-client.csr" "$dir/client-ext.cnf"

log "storing the Secrets $ns/exec-proxy-serving and $ns/exec-proxy-kubelet-client and the ConfigMap $ns/kubelet-ca"
"$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
# ca.crt: the replicas verify each other with it (--peer-certificate-authority).
"$kubectl" -n "$ns" create secret generic exec-proxy-serving --type=kubernetes.io/tls \
  --from-file=tls.crt="$dir/tls.crt" --from-file=tls.key="$dir/tls.key" --from-file=ca.crt="$dir/ca.crt" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
# exec-proxy re-reads the files when the Secret changes (within a minute or two): no restart.
"$kubectl" -n "$ns" create secret tls exec-proxy-kubelet-client \
  --cert="$dir/kubelet-client.crt" --key="$dir/kubelet-client.key" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
rm -f "$dir/kubelet-client.key" # the Secret holds it now
"$kubectl" -n "$ns" create configmap kubelet-ca --from-file=ca.crt="$kubelet_ca" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

if "$kubectl" get apiservice v1alpha1.execproxy.dev >/dev/null 2>&1; then
  log "filling the caBundle of APIService v1alpha1.execproxy.dev"
  "$kubectl" patch apiservice v1alpha1.execproxy.dev --type merge \
    -p "{\"spec\":{\"caBundle\":\"$(base64 -w0 <"$dir/ca.crt")\"}}" >/dev/null
else
  log "next: kubectl apply -k deploy/, then run this again to fill the APIService's caBundle"
fi
