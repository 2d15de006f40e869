#!/usr/bin/env bash
# Builds Tyk Gateway OSS into the cache, keyed by version, with the recipe of ../shared/goproxy/README.md:
# a wrapper module requiring Tyk's pseudo-version, Tyk's own replace line, Tyk's go.sum, two stand-in modules
# (murmur3 at an older commit; openid2go at its 2020 commit, rewritten here at build time to import go-jose v3 and
# golang-jwt v4 because the registry refuses the square/dgrijalva modules it originally imports).
#
# Where modules come from is the user's choice: GOPROXY is honoured; TORII_GOPROXY (e.g. file:///.../goproxy),
# when set, is prepended to it for this build only, with GONOSUMDB for the TykTechnologies modules (the checksum
# database does not know the mirror's zips; Tyk's go.sum pins them instead).
# Exit 3 when no proxy serves the module (recorded as "unavailable" by hack/stack.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
out=$cache/bin/tyk-v$TYK_VERSION
home=$cache/tyk-v$TYK_VERSION
if [[ -x $out && -d $home/templates ]]; then exit 0; fi
mkdir -p "$cache/bin" "$home"

if [[ -n ${TORII_GOPROXY:-} ]]; then
  export GOPROXY="$TORII_GOPROXY,$(go env GOPROXY)"
  export GONOSUMDB="github.com/TykTechnologies${GONOSUMDB:+,$GONOSUMDB}"
fi
export GOFLAGS="-mod=mod $(go env GOFLAGS)"

module=github.com/TykTechnologies/tyk
if ! dl=$(go mod download -json "$module@$TYK_MODULE_VERSION" 2>&1); then
  # The registry's answer, without its address (URLs are elided from what gets recorded and printed).
  answer=$(echo "$dl" | tr '\n\t' '  ' | sed -E 's#(https?|file)://[^ ]*#<proxy URL>#g; s/  +/ /g')
  echo "no Go module proxy serves $module@$TYK_MODULE_VERSION (set TORII_GOPROXY to a mirror that does): $answer"
  exit 3
fi
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
srcdir=$(echo "$dl" | field Dir)

src=$cache/src/tyk-wrapper-v$TYK_VERSION
rm -rf "$src" && mkdir -p "$src"

# openid2go: the 2020 code, rewritten to the jose/jwt modules v0.1.2 uses (only the OIDC middleware needs it).
oid=$(go mod download -json "github.com/TykTechnologies/openid2go@$TYK_OPENID2GO_VERSION" | field Dir)
cp -r "$oid" "$src/openid2go" && chmod -R u+w "$src/openid2go"
find "$src/openid2go" -name '*.go' -exec sed -i \
  -e 's#"github.com/square/go-jose"#jose "github.com/go-jose/go-jose/v3"#' \
  -e 's#"github.com/dgrijalva/jwt-go"#jwt "github.com/golang-jwt/jwt/v4"#' {} +
sed -i 's#newIDTokenValidator(nil, jwt.Parse, kp)#newIDTokenValidator(nil, func(t string, k jwt.Keyfunc) (*jwt.Token, error) { return jwt.Parse(t, k) }, kp)#' \
  "$src/openid2go/openid/middleware.go"
grep -q 'func(t string, k jwt.Keyfunc)' "$src/openid2go/openid/middleware.go" ||
  { echo "openid2go rewrite did not apply: the recipe no longer matches the module" >&2; exit 1; }
cat >"$src/openid2go/go.mod" <<GOMOD
module github.com/TykTechnologies/openid2go

go 1.17

require (
	github.com/go-jose/go-jose/v3 v3.0.4
	github.com/golang-jwt/jwt/v4 v4.5.2
)
GOMOD

goline=$(awk '$1=="go"{print $2; exit}' "$srcdir/go.mod")
{
  echo "module torii.dev/tyk-wrapper"
  echo
  echo "go $goline"
  echo
  echo "require $module $TYK_MODULE_VERSION"
  echo
  # Upstream's replace directives apply only in its own main module: repeat them (local paths excepted).
  awk '
    /^replace \(/ {inblock=1; next}
    inblock && /^\)/ {inblock=0; next}
    inblock && NF {print "replace " $0; next}
    /^replace / {print}
  ' "$srcdir/go.mod" | grep -v '=> \.' || true
  echo "replace github.com/TykTechnologies/murmur3 => github.com/TykTechnologies/murmur3 $TYK_MURMUR3_VERSION"
  echo "replace github.com/TykTechnologies/openid2go => ./openid2go"
} >"$src/go.mod"
cp "$srcdir/go.sum" "$src/go.sum" && chmod u+w "$src/go.sum"
(cd "$src" && go build -trimpath -ldflags "-s -w -X $module/internal/build.Version=$TYK_VERSION" -o "$out.tmp" "$module")
mv "$out.tmp" "$out"
# Tyk panics at start without its error templates; they ship in the module source.
rm -rf "$home/templates" && cp -r "$srcdir/templates" "$home/templates" && chmod -R u+w "$home/templates"
"$out" --version
