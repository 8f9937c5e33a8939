#!/usr/bin/env bash
# Builds the control-plane assets the test kit runs (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, cert-manager's controller and cainjector as one binary, Flux's controllers and
# Argo CD's components) from the Go module proxy, at the versions pinned in versions.env, into cache directories
# keyed by those versions.
#
#   build.sh [build]   build what is missing, print the bin directory on stdout (progress on stderr)
#   build.sh path      print the bin directory without building
#   build.sh cert-manager-crds   build what is missing, print the path of cert-manager's CRDs
#   build.sh cert-manager        build what is missing, print the path of the cert-manager binary
#                                (`cert-manager controller|cainjector --kubeconfig PATH`, see its main.go)
#   build.sh flux      build Flux's source-controller and kustomize-controller if missing (part of build), print
#                      their bin directory; its parent holds crds.yaml (build.sh flux-crds)
#   build.sh flux-crds build Flux as above, print the path of its CRDs (source and kustomize controllers)
#   build.sh argocd    build Argo CD's application controller, repo-server, cmp-server and git askpass helper (one
#                      binary, argocd/main.go) if missing (part of build), print its bin directory; its parent
#                      holds crds.yaml and config.yaml (the base ConfigMaps and Secret of a non-HA install)
#   build.sh stages    copy kwok's stage definitions again (part of build)
#   build.sh update    regenerate the wrapper go.mod/go.sum files from the modules the proxy serves
#   build.sh update-argocd   regenerate argocd/go.mod and go.sum alone
#
# The cache root is $DRGITOPS_TESTENV_ASSETS, else $XDG_CACHE_HOME/drgitops/testenv, else
# ~/.cache/drgitops/testenv. Building is idempotent and safe to start from several processes at once
# (one builds, the others wait on a lock). Go's own build and module caches live under the cache root
# while building and are removed afterwards (set DRGITOPS_TESTENV_KEEP_GO_CACHE=1 to keep them), so the
# only thing left behind is the binaries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -trimpath"
export CGO_ENABLED=0

root="${DRGITOPS_TESTENV_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/drgitops/testenv}"
bin="$root/kubernetes-$KUBERNETES-etcd-$ETCD-kwok-$KWOK/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
# kwok's own "fast" set of stages, as its kustomize/stage/fast lists them (nodes Ready at once and kept alive
# by a heartbeat, pods Ready once scheduled, gone once deleted), copied from its module: kwok runs no stage it
# is not given.
stages="$bin/kwok-stages-fast.yaml"
cert_manager_crds="$root/cert-manager-$CERT_MANAGER/crds.yaml"
cert_manager_bin="$root/cert-manager-$CERT_MANAGER/bin/cert-manager"
flux_dir="$root/flux-source-$FLUX_SOURCE_CONTROLLER-kustomize-$FLUX_KUSTOMIZE_CONTROLLER"
flux_crds="$flux_dir/crds.yaml"
argocd_dir="$root/argocd-$ARGOCD"

log() { printf 'testenv assets: %s\n' "$*" >&2; }

binaries_complete() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
}

complete() {
  binaries_complete && [ -s "$stages" ] && [ -s "$cert_manager_crds" ] && [ -x "$cert_manager_bin" ] && flux_complete \
    && argocd_complete
}

# Writes the YAML documents of the files after the first argument into the first, as one stream.
concat_yaml() {
  local out="$1" f
  shift
  : >"$out.partial"
  for f in "$@"; do
    { echo "---"; cat "$f"; } >>"$out.partial"
  done
  mv "$out.partial" "$out"
}

# The files a kustomization directory lists under resources, directories expanded the same way.
kustomization_files() {
  local dir="$1" entry
  for entry in $(sed -n 's/^- //p' "$dir/kustomization.yaml"); do
    if [ -d "$dir/$entry" ]; then kustomization_files "$dir/$entry"; else echo "$dir/$entry"; fi
  done
}

# The directory of a module version the proxy serves (downloaded into the module cache), run from `dir`.
module_dir() {
  local dir="$1" module="$2" out
  out="$(cd "$dir" && go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -n "$out" ] || { log "FAILED: the module proxy served no $module"; exit 1; }
  echo "$out"
}

copy_cert_manager_crds() {
  local dir
  dir="$(module_dir "$root" "github.com/cert-manager/cert-manager@$CERT_MANAGER")"
  mkdir -p "$(dirname "$cert_manager_crds")"
  concat_yaml "$cert_manager_crds" "$dir"/deploy/crds/*.yaml
  log "copied cert-manager $CERT_MANAGER's CRDs"
}

copy_kwok_stages() {
  local dir
  dir="$(module_dir "$root" "sigs.k8s.io/kwok@$KWOK")"
  mkdir -p "$bin"
  # shellcheck disable=SC2046 # one path per line, none with spaces
  concat_yaml "$stages" $(kustomization_files "$dir/kustomize/stage/fast")
  grep -q '^kind: Stage' "$stages" || { log "FAILED: no kwok stage found under $dir/kustomize/stage/fast"; rm -f "$stages"; exit 1; }
  log "copied kwok's fast stages: $(sed -n 's/^  name: //p' "$stages" | tr '\n' ' ')"
}

require_go() {
  # Debian's image puts Go in /usr/local/go without always putting it on PATH.
  command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || {
    log "the go command is not on PATH; install Go 1.26 (the assets are built from the Go module proxy)"
    exit 1
  }
  local have
  have="$(go env GOVERSION)"
  case "$have" in
    go1.2[6-9]* | go1.[3-9]*) ;;
    *) log "Go $have is too old: the pinned Kubernetes $KUBERNETES needs Go 1.26 or newer"; exit 1 ;;
  esac
}

go_caches() {
  export GOCACHE="$root/.go/build"
  export GOMODCACHE="$root/.go/mod"
}

drop_go_caches() {
  if [ "${DRGITOPS_TESTENV_KEEP_GO_CACHE:-}" = 1 ]; then return; fi
  log "removing Go's build and module caches ($(du -sh "$root/.go" 2>/dev/null | cut -f1))"
  chmod -R u+w "$root/.go" 2>/dev/null || true
  rm -rf "$root/.go"
}

# Runs a go command in a wrapper module; on failure names the module and shows Go's error.
go_in() {
  local dir="$1"
  shift
  local out
  if ! out="$(cd "$here/$dir" && go "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    log "FAILED: 'go $*' in tests/testenv/assets/$dir (pinned: Kubernetes $KUBERNETES, etcd $ETCD, kwok $KWOK, cert-manager $CERT_MANAGER)"
    log "if the module proxy refused a module above, try the neighbouring release in versions.env and run 'build.sh update'"
    exit 1
  fi
  [ -z "$out" ] || printf '%s\n' "$out" >&2
}

build_one() {
  local dir="$1" what="$2"
  shift 2
  local started=$SECONDS
  log "building $what (this takes several minutes on a cold cache)"
  go_in "$dir" build -o "$bin.partial/" "$@"
  log "built $what in $((SECONDS - started)) s"
}

# Prints $2 and succeeds when the check $1 passes; otherwise takes the build lock (waiting while another process
# builds) and checks again. The caller builds only when this fails, holding the lock.
ready_or_locked() {
  local check=$1 out=$2
  if "$check"; then
    echo "$out"
    return 0
  fi
  require_go
  mkdir -p "$root"
  exec 9>"$root/.lock"
  flock -n 9 || { log "another build holds $root/.lock; waiting for it"; flock 9; }
  if "$check"; then
    echo "$out"
    return 0
  fi
  return 1
}

build() {
  ready_or_locked complete "$bin" && return
  go_caches
  local started=$SECONDS
  binaries_complete || build_binaries
  [ -s "$stages" ] || copy_kwok_stages
  [ -s "$cert_manager_crds" ] || copy_cert_manager_crds
  [ -x "$cert_manager_bin" ] || build_cert_manager
  flux_complete || build_flux_binaries
  argocd_complete || build_argocd_binaries
  log "all assets built in $((SECONDS - started)) s into $bin"
  drop_go_caches
  echo "$bin"
}

build_binaries() {
  rm -rf "$bin.partial"
  mkdir -p "$bin.partial"
  local k8s_minor="${KUBERNETES#v1.}"
  k8s_minor="${k8s_minor%%.*}"
  local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version
  local k8s_ldflags="-s -w"
  local pkg
  for pkg in $v $cv; do
    k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build_one etcd "etcd $ETCD" -ldflags "-s -w" -o "$bin.partial/etcd" .
  build_one kwok "kwok $KWOK" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK" sigs.k8s.io/kwok/cmd/kwok
  build_one kubernetes "kube-apiserver, kube-controller-manager, kube-scheduler and kubectl $KUBERNETES" \
    -ldflags "$k8s_ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  rm -rf "$bin"
  mv "$bin.partial" "$bin"
}

# One binary from the packages of cert-manager's module (its own commands are modules of their own, which the
# proxy does not serve): `cert-manager controller` and `cert-manager cainjector`.
build_cert_manager() {
  local required
  required="$(sed -n 's#^\(require \|\t\)github.com/cert-manager/cert-manager \(v[^ ]*\)$#\2#p' "$here/cert-manager/go.mod")"
  if [ "$required" != "$CERT_MANAGER" ]; then
    log "FAILED: tests/testenv/assets/cert-manager/go.mod requires cert-manager ${required:-(none)}, versions.env pins $CERT_MANAGER; run 'build.sh update'"
    exit 1
  fi
  local out
  out="$(dirname "$cert_manager_bin")"
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  build_one cert-manager "cert-manager $CERT_MANAGER's controller and cainjector" \
    -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER" \
    -o "$out.partial/cert-manager" .
  rm -rf "$out"
  mv "$out.partial" "$out"
}

flux_complete() {
  [ -x "$flux_dir/bin/source-controller" ] && [ -x "$flux_dir/bin/kustomize-controller" ] && [ -s "$flux_crds" ]
}

# Flux's source-controller and kustomize-controller, built from the main packages of their root modules by
# the wrapper module flux/ (which carries their replace lines), and their CRDs from config/crd/bases.
build_flux() {
  ready_or_locked flux_complete "$flux_dir/bin" && return
  go_caches
  build_flux_binaries
  drop_go_caches
  echo "$flux_dir/bin"
}

build_flux_binaries() {
  local m v required
  for m in source kustomize; do
    if [ "$m" = source ]; then v="$FLUX_SOURCE_CONTROLLER"; else v="$FLUX_KUSTOMIZE_CONTROLLER"; fi
    required="$(awk -v m="github.com/fluxcd/$m-controller" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$here/flux/go.mod")"
    if [ "$required" != "$v" ]; then
      log "FAILED: tests/testenv/assets/flux/go.mod requires $m-controller ${required:-(none)}, versions.env pins $v; run 'build.sh update'"
      exit 1
    fi
  done
  local started=$SECONDS
  rm -rf "$flux_dir.partial"
  mkdir -p "$flux_dir.partial/bin"
  build_one flux "Flux source-controller $FLUX_SOURCE_CONTROLLER and kustomize-controller $FLUX_KUSTOMIZE_CONTROLLER" \
    -ldflags "-s -w" -o "$flux_dir.partial/bin/" \
    github.com/fluxcd/source-controller github.com/fluxcd/kustomize-controller
  local source_dir kustomize_dir
  source_dir="$(module_dir "$here/flux" "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER")"
  kustomize_dir="$(module_dir "$here/flux" "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER")"
  concat_yaml "$flux_dir.partial/crds.yaml" "$source_dir"/config/crd/bases/*.yaml "$kustomize_dir"/config/crd/bases/*.yaml
  rm -rf "$flux_dir"
  mv "$flux_dir.partial" "$flux_dir"
  log "Flux built in $((SECONDS - started)) s into $flux_dir"
}

argocd_complete() {
  [ -x "$argocd_dir/bin/argocd" ] && [ -x "$argocd_dir/bin/git-verify-wrapper.sh" ] && [ -s "$argocd_dir/crds.yaml" ] \
    && [ -s "$argocd_dir/config.yaml" ]
}

# Argo CD's application controller, repo-server, cmp-server and git askpass helper as one binary (argocd/main.go;
# `argocd argocd-repo-server ...`, or through its links argocd-repo-server, argocd-application-controller,
# argocd-cmp-server and argocd-git-ask-pass), its CRDs from the module's manifests/crds and the ConfigMaps and
# Secret a non-HA install starts from (manifests/base/config).
build_argocd() {
  ready_or_locked argocd_complete "$argocd_dir/bin" && return
  go_caches
  build_argocd_binaries
  drop_go_caches
  echo "$argocd_dir/bin"
}

build_argocd_binaries() {
  local required
  required="$(awk '$1 == "github.com/argoproj/argo-cd/v3" { print $2 } $1 == "require" && $2 == "github.com/argoproj/argo-cd/v3" { print $3 }' "$here/argocd/go.mod")"
  if [ "$required" != "$ARGOCD" ]; then
    log "FAILED: tests/testenv/assets/argocd/go.mod requires argo-cd ${required:-(none)}, versions.env pins $ARGOCD; run 'build.sh update'"
    exit 1
  fi
  local started=$SECONDS
  rm -rf "$argocd_dir.partial"
  mkdir -p "$argocd_dir.partial/bin"
  local pkg=github.com/argoproj/argo-cd/v3/common
  build_one argocd "Argo CD $ARGOCD's application controller, repo-server and cmp-server" \
    -ldflags "-s -w -X $pkg.version=${ARGOCD#v} -X $pkg.gitTag=$ARGOCD -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
    -o "$argocd_dir.partial/bin/argocd" .
  local name
  for name in argocd-application-controller argocd-repo-server argocd-cmp-server argocd-git-ask-pass; do
    ln -s argocd "$argocd_dir.partial/bin/$name"
  done
  local dir
  dir="$(module_dir "$here/argocd" "github.com/argoproj/argo-cd/v3@$ARGOCD")"
  # The scripts Argo CD's image puts next to the binary: the repo-server runs git-verify-wrapper.sh on every
  # revision it generates manifests for.
  for name in gpg-wrapper.sh git-verify-wrapper.sh; do
    install -m 0755 "$dir/hack/$name" "$argocd_dir.partial/bin/$name"
  done
  # shellcheck disable=SC2046 # one path per line, none with spaces
  concat_yaml "$argocd_dir.partial/crds.yaml" $(kustomization_files "$dir/manifests/crds")
  # shellcheck disable=SC2046
  concat_yaml "$argocd_dir.partial/config.yaml" $(kustomization_files "$dir/manifests/base/config")
  rm -rf "$argocd_dir"
  mv "$argocd_dir.partial" "$argocd_dir"
  log "Argo CD built in $((SECONDS - started)) s into $argocd_dir"
}

# The replace lines of a module's go.mod, less those pointing into its own tree, one per line without
# the leading `replace`.
module_replaces() {
  awk '
    /^replace \($/ { block = 1; next }
    block && /^\)$/ { block = 0; next }
    block { sub(/^\t/, ""); print; next }
    /^replace / { sub(/^replace /, ""); print }
  ' "$1" | grep -v '=> \./'
}

update_flux() {
  local source_mod kustomize_mod
  source_mod="$(proxy_mod flux "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER")"
  kustomize_mod="$(proxy_mod flux "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER")"
  [ -n "$source_mod" ] && [ -n "$kustomize_mod" ] || { log "the proxy served no go.mod for Flux's controllers"; exit 1; }
  {
    echo "// Generated by build.sh update; do not edit. Flux's source-controller and kustomize-controller, built"
    echo "// from the main packages of their root modules, with the replace lines of those modules' go.mod files"
    echo "// and github.com/fluxcd/pkg/artifact pinned to FLUX_ARTIFACT (see versions.env)."
    echo "module drgitops.dev/testenv/assets/flux"
    echo
    grep -E '^go [0-9]' "$source_mod"
    echo
    echo "require ("
    echo "	github.com/fluxcd/kustomize-controller $FLUX_KUSTOMIZE_CONTROLLER"
    echo "	github.com/fluxcd/source-controller $FLUX_SOURCE_CONTROLLER"
    echo ")"
    echo
    echo "replace ("
    { module_replaces "$source_mod"; module_replaces "$kustomize_mod"
      echo "github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact $FLUX_ARTIFACT"; } | sort -u | sed 's/^/\t/'
    echo ")"
    echo
    echo "tool ("
    echo "	github.com/fluxcd/kustomize-controller"
    echo "	github.com/fluxcd/source-controller"
    echo ")"
  } >"$here/flux/go.mod"
  : >"$here/flux/go.sum"
  # -e: the tests of source-controller's packages import a module version the proxy refuses; no build needs it.
  GOFLAGS=-mod=mod go_in flux mod tidy -e
}

# Argo CD's wrapper: main.go dispatches to the packages of the argo-cd/v3 module, whose go.mod pins k8s.io/* and
# others with replace lines, copied here; its gitops-engine is a nested module it replaces with ./gitops-engine,
# which a module zip leaves out, so the wrapper takes the one version of it the proxy serves (ARGOCD_GITOPS_ENGINE).
update_argocd() {
  local mod
  mod="$(proxy_mod argocd "github.com/argoproj/argo-cd/v3@$ARGOCD")"
  [ -n "$mod" ] || { log "the proxy served no go.mod for github.com/argoproj/argo-cd/v3@$ARGOCD"; exit 1; }
  {
    echo "// Generated by build.sh update; do not edit. Argo CD's components from the packages of its module"
    echo "// (main.go), with the replace lines of its go.mod and its nested gitops-engine module pinned to"
    echo "// ARGOCD_GITOPS_ENGINE (see versions.env)."
    echo "module drgitops.dev/testenv/assets/argocd"
    echo
    grep -E '^go [0-9]' "$mod"
    echo
    echo "require github.com/argoproj/argo-cd/v3 $ARGOCD"
    echo
    echo "replace ("
    { module_replaces "$mod" | grep -v '^github.com/argoproj/argo-cd/gitops-engine '
      echo "github.com/argoproj/argo-cd/gitops-engine => github.com/argoproj/argo-cd/gitops-engine $ARGOCD_GITOPS_ENGINE"; } | sort -u | sed 's/^/\t/'
    echo ")"
  } >"$here/argocd/go.mod"
  : >"$here/argocd/go.sum"
  GOFLAGS=-mod=mod go_in argocd mod tidy
}

# The .mod file the proxy serves for a module version, downloaded through the go command.
proxy_mod() {
  (cd "$here/$1" && go mod download -json "$2") | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p'
}

update() {
  require_go
  go_caches
  local staging="v0${KUBERNETES#v1}"
  log "deriving the staging replacements from the proxy's k8s.io/kubernetes@$KUBERNETES go.mod"
  local mod
  mod="$(proxy_mod kubernetes "k8s.io/kubernetes@$KUBERNETES")"
  [ -n "$mod" ] || { log "the proxy served no go.mod for k8s.io/kubernetes@$KUBERNETES"; exit 1; }
  {
    echo "// Generated by build.sh update from k8s.io/kubernetes@$KUBERNETES's go.mod; do not edit."
    echo "// k8s.io/kubernetes replaces its staging modules with ./staging/...; a module that depends on it"
    echo "// needs each of them pinned to the matching published release instead."
    echo "module drgitops.dev/testenv/assets/kubernetes"
    echo
    grep -E '^go [0-9]' "$mod"
    grep -E '^godebug ' "$mod" || true
    echo
    echo "require k8s.io/kubernetes $KUBERNETES"
    echo
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 '"$staging"'#p' "$mod"
    echo ")"
    echo
    echo "tool ("
    printf '\tk8s.io/kubernetes/cmd/%s\n' kube-apiserver kube-controller-manager kube-scheduler kubectl
    echo ")"
  } >"$here/kubernetes/go.mod"
  log "$(grep -c '=> k8s.io/' "$here/kubernetes/go.mod") staging modules pinned to $staging"
  : >"$here/kubernetes/go.sum"
  GOFLAGS=-mod=mod go_in kubernetes mod tidy

  local kwok_mod
  kwok_mod="$(proxy_mod kwok "sigs.k8s.io/kwok@$KWOK")"
  {
    echo "// Generated by build.sh update; do not edit."
    echo "module drgitops.dev/testenv/assets/kwok"
    echo
    grep -E '^go [0-9]' "$kwok_mod"
    echo
    echo "require sigs.k8s.io/kwok $KWOK"
    echo
    echo "tool sigs.k8s.io/kwok/cmd/kwok"
  } >"$here/kwok/go.mod"
  : >"$here/kwok/go.sum"
  GOFLAGS=-mod=mod go_in kwok mod tidy

  local etcd_mod
  etcd_mod="$(proxy_mod etcd "go.etcd.io/etcd/server/v3@$ETCD")"
  {
    echo "// Generated by build.sh update; do not edit. main.go runs etcd's own etcdmain.Main."
    echo "module drgitops.dev/testenv/assets/etcd"
    echo
    grep -E '^go [0-9]' "$etcd_mod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD"
  } >"$here/etcd/go.mod"
  : >"$here/etcd/go.sum"
  GOFLAGS=-mod=mod go_in etcd mod tidy

  local cert_manager_mod
  cert_manager_mod="$(proxy_mod cert-manager "github.com/cert-manager/cert-manager@$CERT_MANAGER")"
  {
    echo "// Generated by build.sh update; do not edit. main.go runs cert-manager's controllers and cainjector"
    echo "// from the packages of its module."
    echo "module drgitops.dev/testenv/assets/cert-manager"
    echo
    grep -E '^go [0-9]' "$cert_manager_mod"
    echo
    echo "require github.com/cert-manager/cert-manager $CERT_MANAGER"
  } >"$here/cert-manager/go.mod"
  : >"$here/cert-manager/go.sum"
  GOFLAGS=-mod=mod go_in cert-manager mod tidy

  update_flux
  update_argocd
  log "wrapper modules updated; commit tests/testenv/assets/*/go.mod and go.sum"
}

case "${1:-build}" in
  build) build ;;
  stages) require_go; go_caches; copy_kwok_stages ;;
  path) echo "$bin" ;;
  cert-manager-crds) build >/dev/null && echo "$cert_manager_crds" ;;
  cert-manager) build >/dev/null && echo "$cert_manager_bin" ;;
  flux) build_flux ;;
  flux-crds) build_flux >/dev/null && echo "$flux_crds" ;;
  argocd) build_argocd ;;
  update) update ;;
  update-argocd) require_go; go_caches; update_argocd ;;
  *) echo "usage: build.sh [build|path|cert-manager-crds|cert-manager|flux|flux-crds|argocd|update|update-argocd|stages]" >&2; exit 2 ;;
esac
