"""llmroute's development harness, a source root of its own (``dev/``) that the wheel does not ship.

The local environment: a real kube-apiserver + etcd + kube-controller-manager and a real Prometheus on
loopback, started as child processes (:mod:`.controlplane`, :mod:`.prometheus`, :mod:`.session`), with the
binaries found or built by :mod:`.binaries`; a local pod runner (:mod:`.podrunner`); and the demo
(:mod:`.demo`); a real node — kubelet, containerd, kube-proxy, the image built without Docker
(:mod:`.node`). Used by the tests, the benchmarks, ``make demo`` (``python -m llmroute_dev demo``) and
``make dev-up`` (``python -m llmroute_dev dev up``).

It lives in a git checkout and may find it: :data:`REPO_ROOT` is the checkout's root (the build script
under ``hack/``, the CRD under ``crds/``).
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
