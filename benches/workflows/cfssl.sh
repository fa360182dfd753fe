#!/usr/bin/env bash
# The guide's PKI the guide's way: one CA and its ten identities with cfssl (RSA-2048).
set -euo pipefail
out="$1"
rm -rf "$out" && mkdir -p "$out" && cd "$out"
cat > ca-csr.json <<'JSON'
{"CN": "kubernetes", "key": {"algo": "rsa", "size": 2048}}
JSON
cat > config.json <<'JSON'
{"signing": {"default": {"expiry": "8760h"}, "profiles": {
  "peer": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth", "client auth"]},
  "server": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]},
  "client": {"expiry": "8760h", "usages": ["signing", "key encipherment", "client auth"]}}}}
JSON
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
issue() { # name CN profile hosts
    printf '{"CN": "%s", "hosts": [%s], "key": {"algo": "rsa", "size": 2048}}' "$2" "$4" > "$1-csr.json"
    cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=config.json -profile="$3" "$1-csr.json" 2>/dev/null | cfssljson -bare "$1"
}
issue etcd-server etcd-server peer '"127.0.0.1","10.10.10.80","10.10.10.81","10.10.10.82"'
issue etcd-client etcd-client client ''
issue apiserver kube-apiserver server '"10.32.0.1","10.10.10.80","10.10.10.81","10.10.10.82","10.10.10.2","kubernetes","kubernetes.default"'
issue kubelet-client kube-apiserver-kubelet-client client ''
issue controller-manager system:kube-controller-manager client ''
issue scheduler system:kube-scheduler client ''
issue admin admin client ''
issue kube-proxy system:kube-proxy client ''
issue front-proxy-client front-proxy-client client ''
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
