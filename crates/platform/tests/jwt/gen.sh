#!/bin/sh
# Test-only token keys for the asymmetric verification tests (never use them anywhere else).
# Regenerate with `sh gen.sh` in this directory.
set -eu
openssl genpkey -algorithm ed25519 -out ed25519.key
openssl pkey -in ed25519.key -pubout -out ed25519.pub
openssl genpkey -algorithm ed25519 -out ed25519-next.key
openssl pkey -in ed25519-next.key -pubout -out ed25519-next.pub
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key
openssl pkey -in p256.key -pubout -out p256.pub
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
openssl pkey -in rsa.key -pubout -out rsa.pub
openssl rsa -in rsa.key -RSAPublicKey_out -out rsa-pkcs1.pub 2>/dev/null
openssl rsa -in rsa.key -traditional -out rsa-pkcs1.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out k256.key
openssl pkey -in k256.key -pubout -out k256.pub
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 | openssl pkey -pubout -out rsa1024.pub
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:8192 | openssl pkey -pubout -out rsa8192.pub
