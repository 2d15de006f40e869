#!/usr/bin/env bash
# Builds tyk-operator (the Go operator most Tyk users know; v0.18.0 is its last open-source release) into the
# cache, for the side-by-side benchmark only (bench/compare_tyk_operator.py). Same module setting as the Tyk
# build: TORII_GOPROXY is prepended to GOPROXY, with GONOSUMDB for the TykTechnologies modules. Its CRDs come
# from the module's config/crd/bases/ and are copied next to the binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
out=$cache/bin/tyk-operator-v$TYK_OPERATOR_VERSION
crds=$cache/tyk-operator-v$TYK_OPERATOR_VERSION/crds
if [[ -x $out && -d $crds ]]; then exit 0; fi
if [[ -n ${TORII_GOPROXY:-} ]]; then
  export GOPROXY="$TORII_GOPROXY,$(go env GOPROXY)"
  export GONOSUMDB="github.com/TykTechnologies${GONOSUMDB:+,$GONOSUMDB}"
fi
module=github.com/TykTechnologies/tyk-operator@v$TYK_OPERATOR_VERSION
mkdir -p "$cache/bin" "$crds"
gobin=$cache/src/tyk-operator-v$TYK_OPERATOR_VERSION
GOBIN=$gobin GOFLAGS="-mod=mod $(go env GOFLAGS)" go install -trimpath -ldflags '-s -w' "$module"
mv "$gobin/tyk-operator" "$out"
dir=$(go mod download -json "$module" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp "$dir"/config/crd/bases/*.yaml "$crds/" && chmod u+w "$crds"/*.yaml
echo "tyk-operator $TYK_OPERATOR_VERSION: $out ($(ls "$crds" | wc -l) CRDs)"
