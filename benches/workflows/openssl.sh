#!/usr/bin/env bash
# The guide's PKI with plain openssl: one CA and its ten identities (RSA-2048).
set -euo pipefail
out="$1"
rm -rf "$out" && mkdir -p "$out" && cd "$out"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 3650 -subj "/CN=kubernetes" 2>/dev/null
issue() { # name CN usage san
    openssl req -newkey rsa:2048 -nodes -keyout "$1-key.pem" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' "$3" "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out "$1.pem" -days 365 -extfile "$1.ext" 2>/dev/null
}
issue etcd-server etcd-server serverAuth,clientAuth "subjectAltName=IP:127.0.0.1,IP:10.10.10.80,IP:10.10.10.81,IP:10.10.10.82"
issue etcd-client etcd-client clientAuth ""
issue apiserver kube-apiserver serverAuth "subjectAltName=IP:10.32.0.1,IP:10.10.10.80,IP:10.10.10.81,IP:10.10.10.82,IP:10.10.10.2,DNS:kubernetes"
issue kubelet-client kube-apiserver-kubelet-client clientAuth ""
issue controller-manager system:kube-controller-manager clientAuth ""
issue scheduler system:kube-scheduler clientAuth ""
issue admin admin clientAuth ""
issue kube-proxy system:kube-proxy clientAuth ""
issue front-proxy-client front-proxy-client clientAuth ""
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
