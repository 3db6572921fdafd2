#!/bin/sh
# Test-only certificates for the gRPC TLS tests (never for deployment): a CA, a server
# certificate for localhost / 127.0.0.1, a client certificate that names no bank, and two
# partner-bank client certificates that name bank `abc-luolong-xinqu` (mutual TLS binds a
# bank token to them): `bank` by its subject common name, `bank-san` by a DNS subject
# alternative name under another common name. All are signed by the CA and valid for 100
# years. Run again (from this directory) to regenerate them; the CA's key is not kept.
set -eu
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=fupin test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
for who in server client bank bank-san; do
  openssl ecparam -name prime256v1 -genkey -noout -out k.tmp
  openssl pkcs8 -topk8 -nocrypt -in k.tmp -out $who.key
  rm k.tmp
  subject="/CN=fupin test $who"
  case $who in
    server) ext="subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth" ;;
    client) ext="extendedKeyUsage=clientAuth" ;;
    bank) ext="extendedKeyUsage=clientAuth"; subject="/O=fupin test/CN=abc-luolong-xinqu" ;;
    bank-san) ext="subjectAltName=DNS:abc-core.example,DNS:abc-luolong-xinqu
extendedKeyUsage=clientAuth"; subject="/CN=ABC Luolong Xinqu core" ;;
  esac
  printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$ext" > ext.tmp
  openssl req -new -key $who.key -subj "$subject" -out csr.tmp
  openssl x509 -req -in csr.tmp -CA ca.pem -CAkey ca.key -CAcreateserial -days $days -sha256 \
    -extfile ext.tmp -out $who.pem
  rm csr.tmp ext.tmp
done
rm -f ca.srl ca.key
