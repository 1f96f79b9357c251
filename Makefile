# llmroute — developer entry points. `make test` does all set-up on a fresh machine, then lints and tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
PYTHON    ?= python3
STAMP     := $(VENV)/.installed
SYSDEPS   := redis-server nginx wrk
APT_PKGS  := redis-server nginx-light wrk

.PHONY: help
help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## virtualenv with llmroute and dev tools

.PHONY: system-deps
system-deps: ## Debian packages the tests use (Redis, nginx, wrk)
	@missing=0; for b in $(SYSDEPS); do command -v $$b >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(APT_PKGS); \
	fi

.PHONY: binaries
binaries: ## build kube-apiserver, kube-controller-manager, kubectl, etcd (cached in ~/.cache/llmroute)
	@hack/build-binaries.sh >/dev/null

.PHONY: monitoring-tools
monitoring-tools: ## build Prometheus 3 + promtool, generate the Prometheus Operator CRDs (cached in ~/.cache/llmroute)
	@hack/build-monitoring.sh crds >/dev/null

.PHONY: setup
setup: venv system-deps binaries monitoring-tools ## everything the tests need

.PHONY: lint
lint: venv ## ruff and mypy --strict
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

.PHONY: generate
generate: venv ## regenerate every copy of the CRD (Helm chart, manifests/), the dashboard and rule copies
	$(PY) hack/generate.py
	$(PY) hack/generate_monitoring.py

.PHONY: test
test: setup lint ## set up, lint, and run the whole test suite
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

.PHONY: unit
unit: venv ## fast tests only (no control plane, no Prometheus)
	$(PY) -m pytest -q -m "not cluster and not prometheus" $(PYTEST_ARGS)

.PHONY: demo
demo: setup ## llmroute's main job end to end on loopback (see README)
	$(VENV)/bin/llmroute demo

.PHONY: bench
bench: setup ## run the benchmarks (print JSON)
	$(PY) -m bench.run_all

.PHONY: dev-up
dev-up: setup ## start the local control plane + Prometheus; prints the kubeconfig path
	$(VENV)/bin/llmroute dev up
