#!/usr/bin/env bash
# Build the local control plane (kube-apiserver, kube-controller-manager, kubectl, etcd), helm, and the node's
# binaries (kube-scheduler, kubelet, kube-proxy, the pod sandbox's pause) from Go modules at the versions in
# hack/versions.env, and cache them outside the repository. Prints the directory holding the binaries.
#
#   hack/build-binaries.sh            # build what is missing, print the bin dir
#   LLMROUTE_BIN_DIR=/x hack/build-binaries.sh
#
# Cold on 2 cores this takes ~8-10 minutes; afterwards it returns at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# K8S_VERSION, ETCD_VERSION, HELM_VERSION
source "$here/versions.env"
bin_dir=${LLMROUTE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llmroute/bin/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}}
mkdir -p "$bin_dir"

log() { echo "build-binaries: $*" >&2; }
command -v go >/dev/null || { log "Go toolchain not found (need go >= 1.26)"; exit 1; }

export GOFLAGS=-mod=mod CGO_ENABLED=0
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X ${vpkg}.gitVersion=v${K8S_VERSION} -X ${vpkg}.gitMajor=${K8S_VERSION%%.*}"
minor=${K8S_VERSION#*.}; minor=${minor%%.*}
k8s_ldflags="$k8s_ldflags -X ${vpkg}.gitMinor=${minor} -X ${vpkg}.gitTreeState=clean -X ${vpkg}.buildDate=${build_date}"

for cmd in kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy; do
  if [ ! -x "$bin_dir/$cmd" ]; then
    log "building $cmd v${K8S_VERSION} (first time only)"
    start=$SECONDS
    (cd "$here/controlplane" && go build -trimpath -ldflags "$k8s_ldflags" -o "$bin_dir/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$bin_dir/$cmd.tmp" "$bin_dir/$cmd"
    log "built $cmd in $((SECONDS - start)) s"
  fi
done

if [ ! -x "$bin_dir/etcd" ]; then
  log "building etcd v${ETCD_VERSION} (first time only)"
  start=$SECONDS
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin_dir/etcd.tmp" "$bin_dir/etcd"
  log "built etcd in $((SECONDS - start)) s"
fi

if [ ! -x "$bin_dir/helm" ]; then
  log "building helm v${HELM_VERSION} (first time only)"
  start=$SECONDS
  (cd "$here/helm" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
     -o "$bin_dir/helm.tmp" helm.sh/helm/v4/cmd/helm)
  mv "$bin_dir/helm.tmp" "$bin_dir/helm"
  log "built helm in $((SECONDS - start)) s"
fi

# the node tier's Prometheus discovers pods through the apiserver: Prometheus (hack/prometheus) with only the
# Kubernetes service discovery compiled in (Debian's package has none)
PROMETHEUS_VERSION=3.16.0
if [ ! -x "$bin_dir/prometheus" ]; then
  log "building prometheus v${PROMETHEUS_VERSION} with kubernetes_sd (first time only)"
  start=$SECONDS
  pv=github.com/prometheus/common/version
  (cd "$here/prometheus" && go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
     -ldflags "-s -w -X ${pv}.Version=${PROMETHEUS_VERSION} -X ${pv}.Branch=HEAD -X ${pv}.BuildUser=llmroute" \
     -o "$bin_dir/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus)
  mv "$bin_dir/prometheus.tmp" "$bin_dir/prometheus"
  log "built prometheus in $((SECONDS - start)) s"
fi

if [ ! -x "$bin_dir/pause" ]; then
  (cd "$here/pause" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/pause.tmp" .)
  mv "$bin_dir/pause.tmp" "$bin_dir/pause"
fi

echo "$bin_dir"
