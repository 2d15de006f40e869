#!/usr/bin/env bash
# Evidence for Torii's refusal of spec.mtls on Otoroshi: does Otoroshi check a client certificate's signature?
#
# Starts a second Otoroshi (the stack's build, `make stack-up` first) with an https listener asking for client
# certificates (`otoroshi.ssl.fromOutside.clientAuth=Want`), and a route that lets in only clients whose
# certificate was issued by "CN=Partners CA" (NgHasClientCertMatchingValidator, issuer_dns). Then it calls the
# route with no certificate, with one the real CA signed, and with one signed by another CA of the same name.
#
# On 17.17.0 (2026-12-03): none -> 403, signed by the CA -> 200, forged -> 200. The TLS trust manager accepts any
# chain and the validator compares names only, so Otoroshi cannot restrict a route to a CA's clients.
set -euo pipefail
cd "$(dirname "$0")/.."
source <(grep -E '^OTOROSHI_VERSION=' hack/versions.env)
home=${TORII_CACHE:-$HOME/.cache/torii}/otoroshi-$OTOROSHI_VERSION
[[ -f $home/cp.txt ]] || { echo "no Otoroshi build in $home: run make stack-up first" >&2; exit 1; }
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); https=$(free_port); up=$(free_port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 1 -subj "$2" 2>/dev/null; }
leaf() {  # name subject ca [extfile]
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -out "$1.crt" -days 1 \
    ${4:+-extfile "$4"} 2>/dev/null
}
ca partners "/CN=Partners CA/O=Acme"
ca forger "/CN=Partners CA/O=Acme"          # another key, the same name
leaf good "/CN=client/O=Acme" partners
leaf forged "/CN=client/O=Acme" forger
printf 'subjectAltName=DNS:*.oto.tools\n' > san.ext
leaf server "/CN=*.oto.tools" partners san.ext

python3 -m http.server "$up" --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
OTOROSHI_ADMIN_API_CLIENT_ID=check OTOROSHI_ADMIN_API_CLIENT_SECRET=check-secret java -Xms256m -Xmx768m \
  --add-opens=java.base/javax.net.ssl=ALL-UNNAMED --add-opens=java.base/jdk.internal.misc=ALL-UNNAMED \
  --add-opens=java.base/sun.net.www.protocol.file=ALL-UNNAMED --add-exports=java.base/sun.security.x509=ALL-UNNAMED \
  --add-opens=java.base/sun.security.ssl=ALL-UNNAMED -Dapp.storage=inmemory -Dapp.domain=oto.tools \
  -Dhttp.port="$http" -Dhttps.port="$https" -Dhttp.address=127.0.0.1 -Dplay.server.http.address=127.0.0.1 \
  -Dotoroshi.ssl.fromOutside.clientAuth=Want -Dapp.checkForUpdates=false \
  -Dotoroshi.anonymous-reporting.enabled=false -Dotoroshi.next.state-sync-interval=1000 -Dpidfile.path=/dev/null \
  -cp "$(cat "$home/cp.txt")" play.core.server.ProdServerStart > otoroshi.log 2>&1 & pids+=($!)

admin=(-s -u check:check-secret -H "Host: otoroshi-api.oto.tools" -H "Content-Type: application/json")
for _ in $(seq 120); do
  [[ $(curl "${admin[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/api/groups") == 200 ]] && break
  sleep 1
done
# The server certificate for *.oto.tools (this in-memory Otoroshi generates none), then the route.
python3 - "$http" "$up" <<'EOF'
import base64, json, sys, urllib.request
http, up = sys.argv[1:]
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{http}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Host": "otoroshi-api.oto.tools", "Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(b"check:check-secret").decode()})
    urllib.request.urlopen(req, timeout=30)
post("/api/certificates", {"id": "server", "domain": "*.oto.tools", "chain": open("server.crt").read(),
                           "privateKey": open("server.key").read(), "client": False, "ca": False})
post("/api/routes", {"id": "route_mtls", "name": "mtls", "enabled": True, "groups": ["default"],
    "frontend": {"domains": ["mtls.oto.tools/x"], "strip_path": True, "exact": False},
    "backend": {"targets": [{"hostname": "127.0.0.1", "port": int(up), "tls": False}], "root": "/",
                "load_balancing": {"type": "RoundRobin"}},
    "plugins": [{"enabled": True, "plugin": "cp:otoroshi.next.plugins.OverrideHost", "config": {}},
                {"enabled": True, "plugin": "cp:otoroshi.next.plugins.NgHasClientCertMatchingValidator",
                 "config": {"mandatory": True, "issuer_dns": ["O=Acme, CN=Partners CA", "CN=Partners CA, O=Acme"]}}]})
EOF
call() {
  curl -sk --resolve "mtls.oto.tools:$https:127.0.0.1" "$@" "https://mtls.oto.tools:$https/x/" -o /dev/null \
    -w '%{http_code}'
}
for _ in $(seq 30); do [[ $(call) == 403 ]] && break; sleep 1; done  # the route is served (it refuses)
echo "no certificate:                   $(call)"
echo "signed by Partners CA:            $(call --cert good.crt --key good.key)"
echo "signed by another 'Partners CA':  $(call --cert forged.crt --key forged.key)"
