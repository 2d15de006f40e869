#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy into the cache.
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces staging modules with local paths), so we
# generate a small wrapper module that requires it and pins every staging module to the matching v0.x.y.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
bin=$cache/bin
mkdir -p "$bin"
staging_version="v0.${K8S_VERSION#*.}"

build_k8s() {
  local out_api=$bin/kube-apiserver-v$K8S_VERSION out_kcm=$bin/kube-controller-manager-v$K8S_VERSION
  if [[ -x $out_api && -x $out_kcm ]]; then return; fi
  local src=$cache/src/k8s-wrapper-v$K8S_VERSION
  mkdir -p "$src/kube-apiserver" "$src/kube-controller-manager"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local goline
  goline=$(awk '$1=="go"{print $2; exit}' "$gomod")
  {
    echo "module torii.dev/k8s-wrapper"
    echo
    echo "go $goline"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    # Every staging module that upstream requires at v0.0.0 is pinned to the release's v0.N.P.
    awk '$2=="v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$gomod" | sort -u | while read -r m; do
      echo "replace $m => $m $staging_version"
    done
  } >"$src/go.mod"
  cat >"$src/kube-apiserver/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  cat >"$src/kube-controller-manager/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }
GO
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy)
  (cd "$src" && go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#*.}" -o "$out_api.tmp" ./kube-apiserver && mv "$out_api.tmp" "$out_api")
  (cd "$src" && go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION" -o "$out_kcm.tmp" ./kube-controller-manager && mv "$out_kcm.tmp" "$out_kcm")
}

build_etcd() {
  local out=$bin/etcd-v$ETCD_VERSION
  if [[ -x $out ]]; then return; fi
  local src=$cache/src/etcd-wrapper-v$ETCD_VERSION
  mkdir -p "$src"
  cat >"$src/go.mod" <<GOMOD
module torii.dev/etcd-wrapper

go 1.23

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy && go build -trimpath -ldflags "-s -w" -o "$out.tmp" . && mv "$out.tmp" "$out")
}

build_helm() {
  local out=$bin/helm-v$HELM_VERSION
  if [[ -x $out ]]; then return; fi
  # Without the version ldflag helm reports a bogus version and assumes Kubernetes 1.20.
  GOBIN=$cache/src/helm-v$HELM_VERSION go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$cache/src/helm-v$HELM_VERSION/helm" "$out"
}

what=${1:-all}
case $what in
  k8s) build_k8s ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  all) build_etcd; build_helm; build_k8s ;;
  *) echo "usage: $0 [k8s|etcd|helm|all]" >&2; exit 2 ;;
esac
