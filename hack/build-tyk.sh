#!/usr/bin/env bash
# Builds Tyk Gateway OSS from the Go module proxy into the cache.
# `go install github.com/TykTechnologies/tyk@v5.x` is refused (no /v5 suffix, and go.mod has replace
# directives), so: resolve the release tag to its pseudo-version, then build the module's root main package
# from a wrapper module that requires it and repeats its replace directives.
# Exit 3 when the registry refuses to serve the module (recorded as "unavailable" by hack/stack.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
out=$cache/bin/tyk-v$TYK_VERSION
home=$cache/tyk-v$TYK_VERSION
if [[ -x $out && -d $home/templates ]]; then exit 0; fi
mkdir -p "$cache/bin" "$home"

module=github.com/TykTechnologies/tyk
if ! info=$(go list -m -json "$module@$TYK_MODULE_VERSION" 2>&1); then
  # The registry's answer, without its address (URLs are elided from what gets recorded and printed).
  answer=$(echo "$info" | tr '\n\t' '  ' | sed -E 's#https?://[^ ]*#<proxy URL>#g; s/  +/ /g')
  echo "the Go module proxy refuses $module@$TYK_MODULE_VERSION: $answer"
  exit 3
fi
pseudo=$(echo "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])')
dl=$(go mod download -json "$module@$pseudo")
gomod=$(echo "$dl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
srcdir=$(echo "$dl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')

src=$cache/src/tyk-wrapper-v$TYK_VERSION
mkdir -p "$src"
goline=$(awk '$1=="go"{print $2; exit}' "$gomod")
{
  echo "module torii.dev/tyk-wrapper"
  echo
  echo "go $goline"
  echo
  echo "require $module $pseudo"
  echo
  # Upstream's replace directives (single-line and block form) apply only in its own main module: repeat them.
  awk '
    /^replace \(/ {inblock=1; next}
    inblock && /^\)/ {inblock=0; next}
    inblock && NF {print "replace " $0; next}
    /^replace / {print}
  ' "$gomod" | grep -v '=> \.' || true
} >"$src/go.mod"
(cd "$src" && GOFLAGS=-mod=mod go get "$module@$pseudo" && GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" "$module")
mv "$out.tmp" "$out"
# Tyk panics at start without its error templates; they ship in the module source.
rm -rf "$home/templates" && cp -r "$srcdir/templates" "$home/templates" && chmod -R u+w "$home/templates"
