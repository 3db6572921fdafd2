#!/bin/sh
# Test-only certificates for crates/platform/tests/grpc_tls.rs (never for deployment): a CA,
# a server certificate for localhost / 127.0.0.1 and a client certificate, all signed by the
# CA and valid for 100 years. Run again (from this directory) to regenerate them.
set -eu
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=fupin test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
for who in server client; do
  openssl ecparam -name prime256v1 -genkey -noout -out k.tmp
  openssl pkcs8 -topk8 -nocrypt -in k.tmp -out $who.key
  rm k.tmp
  if [ $who = server ]; then
    ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  else
    ext="extendedKeyUsage=clientAuth"
  fi
  printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$ext" > ext.tmp
  openssl req -new -key $who.key -subj "/CN=fupin test $who" -out csr.tmp
  openssl x509 -req -in csr.tmp -CA ca.pem -CAkey ca.key -CAcreateserial -days $days -sha256 \
    -extfile ext.tmp -out $who.pem
  rm csr.tmp ext.tmp
done
rm -f ca.srl
