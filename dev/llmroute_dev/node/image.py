"""Build the repository's ``Dockerfile`` without a Docker daemon or a registry, and cache the result.

``buildah bud`` (Debian's ``buildah``, chroot isolation, its own storage under ``~/.cache/llmroute/image``)
runs the very same Dockerfile users run with ``docker build``; only ``BASE_IMAGE`` differs: the
``debian:bookworm-slim`` equivalent from :mod:`.rootfs` instead of the registry's. The image is exported
as a docker-archive tar (what ``ctr images import`` and ``kind load image-archive`` take) tagged
``ghcr.io/llmroute/llmroute:<version>``, and cached under a key of every input, so only a change to the
sources, the Dockerfile or the base rebuilds it.

Sizes: *compressed* is the sum of the gzip-compressed layers (what a registry stores and a node pulls),
*unpacked* the sum of the uncompressed layers (what ``docker images`` shows).
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from llmroute_dev.node.rootfs import base_archive, base_key, cache_root

REPO_ROOT = Path(__file__).resolve().parents[3]
REPOSITORY = "ghcr.io/llmroute/llmroute"
INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "operator", "hack/image")
SKIP = re.compile(r"(__pycache__|\.pyc$|\.egg-info|\.mypy_cache)")
HOST_CA = "/run/llmroute-build-ca.crt"


@dataclass(frozen=True)
class BuiltImage:
    """A built image: its reference, the docker-archive holding it, and what building it cost."""

    reference: str
    archive: Path
    image_id: str
    compressed_bytes: int
    unpacked_bytes: int
    build_seconds: float
    cached: bool = False

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"archive": str(self.archive)}


def version(root: Path = REPO_ROOT) -> str:
    """``llmroute.__version__`` read from its one place, ``operator/llmroute/__init__.py``."""
    text = (root / "operator" / "llmroute" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if found is None:
        raise ValueError("no __version__ in operator/llmroute/__init__.py")
    return found.group(1)


def input_key(root: Path = REPO_ROOT) -> str:
    """A short hash of the build's inputs: the files the Dockerfile copies, the Dockerfile, the base."""
    digest = hashlib.sha256(base_key().encode())
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            rel = file.relative_to(root).as_posix()
            if not SKIP.search(rel):
                digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_dir() -> Path:
    return cache_root() / "image"


def build(root: Path = REPO_ROOT, *, force: bool = False) -> BuiltImage:
    """The image for the current sources: from the cache when its inputs are unchanged, else built
    (minutes the first time; raises ``subprocess.CalledProcessError`` with buildah's output if it fails)."""
    tag = version(root)
    key = input_key(root)
    archive = image_dir() / f"llmroute-{tag}-{key}.tar"
    meta = archive.with_suffix(".json")
    if archive.is_file() and meta.is_file() and not force:
        data = json.loads(meta.read_text())
        return BuiltImage(**(data | {"archive": archive, "cached": True}))
    for tool in ("buildah",):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found: `make system-deps` installs it")
    start = time.monotonic()
    base = _base_image()
    reference = f"{REPOSITORY}:{tag}"
    args = ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"VERSION={tag}"]
    ca = host_ca_bundle()
    if ca is not None:
        args += ["--build-arg", f"PIP_CERT={HOST_CA}", "--volume", f"{ca}:{HOST_CA}:ro"]
    iid_file = image_dir() / f".iid-{key}"
    buildah(
        "bud",
        "--layers",
        "--isolation=chroot",
        "--pull=never",
        "--format=oci",
        f"--iidfile={iid_file}",
        "--tag",
        reference,
        *args,
        str(root),
        quiet=False,
    )
    image_id = iid_file.read_text().strip().removeprefix("sha256:")
    iid_file.unlink()
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    buildah("push", "--quiet", image_id, f"docker-archive:{partial}:{reference}")
    compressed, unpacked = layer_sizes(image_id)
    partial.replace(archive)
    result = BuiltImage(reference, archive, image_id, compressed, unpacked, time.monotonic() - start)
    meta.write_text(json.dumps(result.to_json(), indent=2))
    _prune(keep=archive)
    return result


def layer_sizes(image: str) -> tuple[int, int]:
    """(compressed, unpacked) bytes of ``image``'s layers: pushed gzip-compressed to a scratch OCI layout."""
    with tempfile.TemporaryDirectory(dir=image_dir(), prefix=".oci-") as tmp:
        buildah("push", "--quiet", "--compression-format=gzip", image, f"oci:{tmp}/layout")
        layout = Path(tmp) / "layout"
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())
        compressed = sum(int(layer["size"]) for layer in manifest["layers"])
    with _mounted(image) as rootfs:
        unpacked = sum(p.lstat().st_size for p in rootfs.rglob("*") if not p.is_dir())
    return compressed, unpacked


def inspect(image: str) -> dict[str, object]:
    """The image's OCI config (``User``, ``Entrypoint``, ``Env``, ``Labels``, ...)."""
    out = buildah("inspect", "--type=image", image)
    config: dict[str, object] = json.loads(out)["OCIv1"]["config"]
    return config


@contextlib.contextmanager
def mounted(image: str) -> Iterator[Path]:
    """The image's root filesystem, mounted read-write on a throw-away working container."""
    with _mounted(image) as path:
        yield path


def host_ca_bundle() -> str | None:
    """The CA bundle this host's pip uses (set when TLS is inspected on the way out), if any."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return value
    parser = configparser.ConfigParser()
    parser.read(["/etc/pip.conf", str(Path.home() / ".config/pip/pip.conf")])
    value = parser.get("global", "cert", fallback="")
    return value if value and Path(value).is_file() else None


def buildah(*args: str, quiet: bool = True) -> str:
    """Run buildah on llmroute's own storage (never the system's); return its stdout."""
    storage = image_dir() / "buildah"
    argv = [
        "buildah",
        f"--root={storage / 'root'}",
        f"--runroot={storage / 'run'}",
        "--storage-driver=overlay",
        *args,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
    if not quiet:
        (image_dir() / "last-build.log").write_text(proc.stdout + proc.stderr)
    return proc.stdout


def _base_image() -> str:
    name = f"localhost/llmroute-base:debian-bookworm-slim-{base_key()}"
    with contextlib.suppress(subprocess.CalledProcessError):
        buildah("inspect", "--type=image", name)
        return name
    archive = base_archive()
    container = buildah("from", "--pull=never", "scratch").strip()
    try:
        buildah("add", container, str(archive), "/")
        path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        buildah("config", "--cmd=bash", "--env", path, container)
        buildah("commit", "--quiet", "--rm", container, name)
    except BaseException:
        with contextlib.suppress(subprocess.CalledProcessError):
            buildah("rm", container)
        raise
    return name


@contextlib.contextmanager
def _mounted(image: str) -> Iterator[Path]:
    container = buildah("from", "--pull=never", image).strip()
    try:
        yield Path(buildah("mount", container).strip())
    finally:
        buildah("rm", container)


def _blob(layout: Path, digest: str) -> Path:
    algo, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algo / hexdigest


def _prune(keep: Path, limit_bytes: int = 6 << 30) -> None:
    """Keep only the newest llmroute archive; empty buildah's layer cache once it passes ``limit_bytes``."""
    for old in image_dir().glob("llmroute-*.tar"):
        if old != keep:
            old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)
    du = subprocess.run(["du", "-sxb", str(image_dir() / "buildah")], capture_output=True, text=True)
    if du.returncode == 0 and int(du.stdout.split()[0]) > limit_bytes:
        with contextlib.suppress(subprocess.CalledProcessError):
            buildah("rmi", "--prune")


def pause_archive(binary: Path, reference: str) -> Path:
    """The pod sandbox image (``hack/pause``: one static binary, user 65535) as a docker-archive, cached
    by the binary's and its Dockerfile's content."""
    dockerfile = REPO_ROOT / "hack" / "pause" / "Dockerfile"
    digest = hashlib.sha256(binary.read_bytes() + dockerfile.read_bytes() + reference.encode())
    archive = image_dir() / f"pause-{digest.hexdigest()[:12]}.tar"
    if archive.is_file():
        return archive
    image_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=image_dir(), prefix=".pause-") as tmp:
        shutil.copy2(binary, Path(tmp) / "pause")
        shutil.copy2(dockerfile, Path(tmp) / "Dockerfile")
        buildah("bud", "--isolation=chroot", "--pull=never", "--tag", reference, tmp)
        partial = archive.with_suffix(".partial")
        buildah("push", "--quiet", reference, f"docker-archive:{partial}:{reference}")
        partial.replace(archive)
    return archive
