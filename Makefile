# llmroute — developer entry points. `make test` does all set-up on a fresh machine, then lints and tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
PYTHON    ?= python3
STAMP     := $(VENV)/.installed
DEVROOT   := $(VENV)/.dev-root
SYSDEPS   := prometheus promtool redis-server nginx wrk containerd runc debootstrap buildah iptables
APT_PKGS  := prometheus redis-server nginx-light wrk \
             containerd runc containernetworking-plugins debootstrap buildah iptables

.PHONY: help
help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# the development harness (dev/llmroute_dev) is a source root the wheel does not ship: a .pth file puts it
# on the venv's sys.path, so `python -m llmroute_dev`, the tests and the benchmarks import it
$(DEVROOT): $(STAMP)
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "llmroute_dev.pth").write_text("$(CURDIR)/dev\n")'
	touch $(DEVROOT)

.PHONY: venv
venv: $(STAMP) $(DEVROOT) ## virtualenv with llmroute, its development harness and dev tools

.PHONY: system-deps
system-deps: ## Debian packages the tests use (Prometheus, Redis, nginx, wrk; containerd, runc, CNI, debootstrap, buildah)
	@missing=0; for b in $(SYSDEPS); do command -v $$b >/dev/null || missing=1; done; \
	[ -x /usr/lib/cni/bridge ] || missing=1; \
	if [ $$missing = 1 ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(APT_PKGS); \
	fi

.PHONY: binaries
binaries: ## build the control plane, helm and the node's binaries (cached in ~/.cache/llmroute)
	@hack/build-binaries.sh >/dev/null

.PHONY: setup
setup: venv system-deps binaries ## everything the tests need

.PHONY: lint
lint: venv ## ruff and mypy --strict
	$(VENV)/bin/ruff check operator dev tests bench
	$(VENV)/bin/ruff format --check operator dev tests bench
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

.PHONY: generate
generate: venv ## regenerate every copy of the CRD (Helm chart, manifests/)
	$(PY) hack/generate.py

.PHONY: test
test: setup lint ## set up, lint, and run the whole test suite
	$(PY) -m pytest -q -ra --tiers all $(PYTEST_ARGS)

.PHONY: unit
unit: venv ## fast tiers only: unit and proxy (no control plane, Prometheus or node); what a bare pytest runs
	$(PY) -m pytest -q --tiers unit,proxy $(PYTEST_ARGS)

.PHONY: image
image: venv ## build the llmroute image without Docker (buildah on a debootstrap base; cached by its inputs)
	$(PY) -m llmroute_dev.node image

.PHONY: demo
demo: setup ## llmroute's main job end to end on loopback (see README)
	$(PY) -m llmroute_dev demo

.PHONY: bench
bench: setup ## run the benchmarks (print JSON)
	$(PY) -m bench.run_all

.PHONY: dev-up
dev-up: setup ## start the local control plane + Prometheus; prints the kubeconfig path
	$(PY) -m llmroute_dev dev up
