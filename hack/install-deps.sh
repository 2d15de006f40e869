#!/usr/bin/env bash
# System packages the local stack needs, for a fresh machine. Idempotent: installs only what is missing.
# Go, Java 17 + Maven, Python 3.11 and kubectl are part of the machine image.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for tool in go java mvn python3 kubectl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: it is expected on the machine image" >&2; exit 1; }
done
