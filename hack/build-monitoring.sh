#!/usr/bin/env bash
# Build the monitoring tools the tests run, from Go modules, and cache them outside the repository:
#   prometheus, promtool  Prometheus 3.x (hack/prometheus/go.mod), API only: no web UI assets; of the service
#                         discoveries only file, HTTP (remove_all_sd) and Kubernetes (enable_kubernetes_sd,
#                         the node tier finds pods through the apiserver): what the tests use
#   controller-gen        (hack/prometheus-operator/go.mod), run once on the Prometheus Operator's API types to
#                         generate the ServiceMonitor, PodMonitor and PrometheusRule CRDs the chart tests install
# Prints the directory holding prometheus and promtool.
#
#   hack/build-monitoring.sh                 # build what is missing, print the Prometheus bin dir
#   hack/build-monitoring.sh crds            # also generate the CRDs; print their directory
#   LLMROUTE_CACHE_DIR=/x hack/build-monitoring.sh
#
# Cold on 2 cores: Prometheus and promtool ~4 minutes, controller-gen and the CRDs ~1 minute.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# PROMETHEUS_VERSION, CONTROLLER_TOOLS_VERSION, PROMETHEUS_OPERATOR_VERSION
source "$here/versions.env"
cache=${LLMROUTE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llmroute}
prom_dir=$cache/bin/prometheus-v${PROMETHEUS_VERSION}-sd-file-http-kubernetes  # the build tags are part of the key
gen_dir=$cache/bin/controller-gen-v${CONTROLLER_TOOLS_VERSION}
crd_dir=$cache/crds/prometheus-operator-v${PROMETHEUS_OPERATOR_VERSION}

log() { echo "build-monitoring: $*" >&2; }
command -v go >/dev/null || { log "Go toolchain not found (need go >= 1.26)"; exit 1; }
export GOFLAGS=-mod=mod CGO_ENABLED=0

vpkg=github.com/prometheus/common/version
prom_ldflags="-s -w -X ${vpkg}.Version=${PROMETHEUS_VERSION} -X ${vpkg}.Branch=HEAD -X ${vpkg}.BuildUser=llmroute"
mkdir -p "$prom_dir"
for cmd in prometheus promtool; do
  if [ ! -x "$prom_dir/$cmd" ]; then
    log "building $cmd v${PROMETHEUS_VERSION} (first time only)"
    start=$SECONDS
    (cd "$here/prometheus" && go build -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "$prom_ldflags" \
       -o "$prom_dir/$cmd.tmp" "github.com/prometheus/prometheus/cmd/$cmd")
    mv "$prom_dir/$cmd.tmp" "$prom_dir/$cmd"
    log "built $cmd in $((SECONDS - start)) s"
  fi
done

if [ "${1:-}" != crds ]; then
  echo "$prom_dir"
  exit 0
fi

if [ ! -x "$gen_dir/controller-gen" ]; then
  log "building controller-gen v${CONTROLLER_TOOLS_VERSION} (first time only)"
  start=$SECONDS
  mkdir -p "$gen_dir"
  (cd "$here/prometheus-operator" && go build -trimpath -ldflags "-s -w" -o "$gen_dir/controller-gen.tmp" \
     sigs.k8s.io/controller-tools/cmd/controller-gen)
  mv "$gen_dir/controller-gen.tmp" "$gen_dir/controller-gen"
  log "built controller-gen in $((SECONDS - start)) s"
fi

if [ ! -s "$crd_dir/monitoring.coreos.com_servicemonitors.yaml" ]; then
  log "generating the Prometheus Operator v${PROMETHEUS_OPERATOR_VERSION} CRDs from its API types"
  start=$SECONDS
  rm -rf "$crd_dir.tmp" && mkdir -p "$crd_dir.tmp"
  (cd "$here/prometheus-operator" && "$gen_dir/controller-gen" crd:crdVersions=v1 \
     paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
     output:crd:dir="$crd_dir.tmp")
  rm -rf "$crd_dir" && mv "$crd_dir.tmp" "$crd_dir"
  log "generated the CRDs in $((SECONDS - start)) s"
fi
echo "$crd_dir"
