"""The image built here without Docker is the image the Dockerfile describes for users: the base has
exactly the packages of ``debian:bookworm-slim``, and the result has the Dockerfile's user, entrypoint,
labels, paths and nothing of the build stage (pip, venv tooling)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from llmroute import __version__
from llmroute_dev.node.image import BuiltImage, inspect, mounted
from llmroute_dev.node.rootfs import SLIM_PACKAGES, base_key

ROOT = Path(__file__).resolve().parents[2]


def _packages(rootfs: Path) -> set[str]:
    status = (rootfs / "var/lib/dpkg/status").read_text()
    blocks = [b for b in status.split("\n\n") if "Status: install ok installed" in b]
    return {re.search(r"^Package: (\S+)", b, re.M).group(1) for b in blocks}  # type: ignore[union-attr]


def _dockerfile(instruction: str) -> str:
    """The argument of the last ``instruction`` in the Dockerfile (the runtime stage's)."""
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith(f"{instruction} ")]
    return lines[-1].split(" ", 1)[1]


def test_base_has_the_packages_of_debian_bookworm_slim(node_image: BuiltImage) -> None:
    with mounted(f"localhost/llmroute-base:debian-bookworm-slim-{base_key()}") as rootfs:
        assert _packages(rootfs) == SLIM_PACKAGES
        assert not list((rootfs / "usr/share/man").glob("*"))
        assert (rootfs / "etc/apt/sources.list.d/debian.sources").is_file()


def test_image_config_is_the_dockerfiles(node_image: BuiltImage) -> None:
    config = inspect(node_image.reference)
    assert node_image.reference == f"ghcr.io/llmroute/llmroute:{__version__}"
    assert config["User"] == _dockerfile("USER") == "10001:10001"
    assert config["Entrypoint"] == json.loads(_dockerfile("ENTRYPOINT")) == ["llmroute"]
    labels = config["Labels"]
    assert isinstance(labels, dict)
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert any(e.startswith("PATH=/opt/llmroute/bin:") for e in config["Env"])  # type: ignore[attr-defined]


def test_image_holds_the_runtime_only(node_image: BuiltImage) -> None:
    with mounted(node_image.reference) as rootfs:
        packages = _packages(rootfs)
        site = next((rootfs / "opt/llmroute/lib").glob("python3*/site-packages"))
        passwd = (rootfs / "etc/passwd").read_text()
        assert packages >= SLIM_PACKAGES and {"python3", "python3.11"} <= packages
        assert not {"python3-venv", "python3-pip"} & packages, "build-stage packages leaked into the image"
        assert (rootfs / "opt/llmroute/bin/llmroute").is_file()
        assert (rootfs / "opt/llmroute/bin/python3").resolve(strict=False).name.startswith("python3")
        assert not (site / "pip").exists() and not (site / "setuptools").exists()
        assert list((site / "llmroute" / "__pycache__").glob("*.pyc")), "bytecode not compiled at build time"
        assert "llmroute:x:10001:10001:" in passwd
        for command in ("operator", "proxy"):  # the one entrypoint serves both, as the image's user
            argv = [
                "/usr/sbin/chroot",
                "--userspec=10001:10001",
                str(rootfs),
                "/opt/llmroute/bin/llmroute",
                command,
                "--help",
            ]
            env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
            out = subprocess.run(argv, capture_output=True, text=True, env=env)
            assert out.returncode == 0 and f"usage: llmroute {command}" in out.stdout, out.stderr
    assert node_image.compressed_bytes < 100_000_000, node_image.compressed_bytes
