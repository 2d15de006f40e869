#!/usr/bin/env bash
# `make demo`: stack up, CRDs, operator, examples, Ready, and requests through each gateway.
# `hack/demo.sh stop` stops the demo's operator and upstream (the stack stays up: `make stack-down`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pids=.stack/demo.pids
# The examples name the upstream as 127.0.0.1:18080; the demo runs its own on a free port and applies the
# examples with that port, so it never shows another program's answer as its own.
EXAMPLE_UPSTREAM=127.0.0.1:18080

stop() {
  [[ -f $pids ]] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$pids"
  rm -f "$pids"
}
if [[ ${1:-} == stop ]]; then stop; exit 0; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "local stack"
python3 hack/stack.py up
# shellcheck disable=SC1091
source .stack/env

say "CRDs"
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

say "operator configuration (gateways from .stack/env, credentials in a Secret)"
.venv/bin/python hack/local_config.py

stop
run_id=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
port_file=.stack/demo-upstream.port
rm -f "$port_file"
python3 hack/demo_upstream.py "$port_file" "$run_id" >.stack/logs/demo-upstream.log 2>&1 &
echo $! >>"$pids"
for _ in $(seq 1 100); do [[ -s $port_file ]] && break; sleep 0.1; done
[[ -s $port_file ]] || { echo "demo upstream did not start; see .stack/logs/demo-upstream.log" >&2; exit 1; }
UPSTREAM="127.0.0.1:$(cat "$port_file")"
say "demo upstream on $UPSTREAM (run $run_id)"

# Shows a request and its answer; fails unless the answer came from this run's upstream with the given status.
request() {
  local want=$1; shift
  local shown="$*"
  [[ -n ${KEY:-} ]] && shown=${shown//$KEY/\$KEY}   # the demo shows where the key goes, not the key
  echo "\$ curl $shown"
  local out code
  out=$(curl -sS -w '\n%{http_code}' "$@")
  code=${out##*$'\n'}; out=${out%$'\n'*}
  echo "$out"
  echo "(HTTP $code)"
  if [[ $code != "$want" ]]; then echo "demo: expected HTTP $want" >&2; exit 1; fi
  if [[ $want == 200 && $out != *"\"run\": \"$run_id\""* ]]; then
    echo "demo: that answer did not come from the demo's upstream" >&2; exit 1
  fi
}

health=$(free_port); metrics=$(free_port)
say "operator (log: .stack/logs/operator.log, metrics: http://127.0.0.1:$metrics/metrics)"
.venv/bin/torii run --standalone --config .stack/torii.yaml --liveness "http://127.0.0.1:$health/healthz" \
  --metrics-port "$metrics" --metrics-addr 127.0.0.1 >.stack/logs/operator.log 2>&1 &
echo $! >>"$pids"
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$health/healthz" >/dev/null && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$health/healthz" >/dev/null || { tail -30 .stack/logs/operator.log; exit 1; }

say "examples"
kubectl apply -f examples/00-namespace.yaml
for f in examples/*.yaml; do sed "s/$EXAMPLE_UPSTREAM/$UPSTREAM/g" "$f"; echo "---"; done | kubectl apply -f -

served=0
if [[ -n ${TYK_URL:-} ]]; then
  say "Tyk"
  kubectl wait --for=condition=Ready gatewayapi/orders -n torii-demo --timeout=120s
  request 200 "$TYK_URL/orders/status"
  kubectl wait --for=condition=Ready gatewaykey/payments-client -n torii-demo --timeout=120s
  say "a generated key, taken from its Secret"
  echo '$ KEY=$(kubectl get secret payments-client -n torii-demo -o jsonpath={.data.key} | base64 -d)'
  KEY=$(kubectl get secret payments-client -n torii-demo -o jsonpath='{.data.key}' | base64 -d)
  request 200 -H "Authorization: $KEY" "$TYK_URL/payments/charge"
  say "without the key"
  request 401 "$TYK_URL/payments/charge"
  kubectl wait --for=condition=Ready gatewaykey/billing-reporter -n torii-demo --timeout=120s
  say "a generated basic-auth user (auth: basicAuth), taken from its Secret"
  echo '$ AUTH=$(kubectl get secret billing-reporter -n torii-demo -o jsonpath={.data.Authorization} | base64 -d)'
  AUTH=$(kubectl get secret billing-reporter -n torii-demo -o jsonpath='{.data.Authorization}' | base64 -d)
  request 200 -H "Authorization: $AUTH" "$TYK_URL/billing/invoices"
  served=$((served + 1))
fi
if [[ -n ${OTOROSHI_URL:-} ]]; then
  say "Otoroshi"
  kubectl wait --for=condition=Ready gatewayapi/catalog -n torii-demo --timeout=120s
  request 200 -H "Host: api.$OTOROSHI_DOMAIN" "$OTOROSHI_URL/catalog/items"
  kubectl wait --for=condition=Ready gatewayapi/inventory gatewaykey/inventory-client -n torii-demo --timeout=120s
  say "a generated Otoroshi key, taken from its Secret"
  echo '$ KEY=$(kubectl get secret inventory-client -n torii-demo -o jsonpath={.data.basicAuthHeader} | base64 -d)'
  KEY=$(kubectl get secret inventory-client -n torii-demo -o jsonpath='{.data.basicAuthHeader}' | base64 -d)
  request 200 -H "Host: api.$OTOROSHI_DOMAIN" -H "Authorization: $KEY" "$OTOROSHI_URL/inventory/items"
  say "without the key"
  request 400 -H "Host: api.$OTOROSHI_DOMAIN" "$OTOROSHI_URL/inventory/items"
  served=$((served + 1))
fi

say "status"
kubectl get torii -n torii-demo -o wide
if ((served == 0)); then
  echo
  echo "No gateway could be started on this machine, so nothing can be served:"
  [[ -n ${TORII_TYK_UNAVAILABLE:-} ]] && echo "  tyk: $TORII_TYK_UNAVAILABLE"
  [[ -n ${TORII_OTOROSHI_UNAVAILABLE:-} ]] && echo "  otoroshi: $TORII_OTOROSHI_UNAVAILABLE"
  echo "The operator is running and reports this per object (Ready=False, reason GatewayNotConfigured) above."
  exit 1
fi
echo
echo "Operator still running (hack/demo.sh stop, then make stack-down)."
