"""What a kubelet does with a proxy pod's volumes, done on the local disk for the pod runner.

* :func:`volume_files` reads a pod template's ``configMap``, ``secret`` and ``projected`` volumes into
  memory (path inside the volume -> bytes) from the API server.
* :func:`write_atomic` publishes files the way kubelet's AtomicWriter does: a new timestamped directory,
  then an atomic rename of the ``..data`` symlink, with the visible names linking through ``..data``. A
  reader never sees a half-written file, and a proxy polling ``stat`` sees a new inode: its hot reload.
* :func:`localise` turns the rendered proxy config into the copy a local process can run. Paths the
  config names under a mount (``/etc/llmroute/clients/...``) are rewritten to where the runner writes those
  files; upstream API keys are handed over as the environment variables the config names
  (``apiKeyEnv``), so they never appear in a config or on the command line. The copy gets its own hash.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from llmroute.spec.proxyconfig import ProxyConfig

Files = dict[str, bytes]
ReadObject = Callable[[str, str], dict[str, Any] | None]  # (kind, name) -> object or None if absent
DATA_LINK = "..data"


def _object_files(obj: dict[str, Any] | None, items: list[dict[str, Any]] | None) -> Files:
    """Files of a ConfigMap or Secret (``items`` selects keys and their paths, as in a volume source)."""
    if obj is None:
        return {}
    data: dict[str, bytes] = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    if obj.get("kind") == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    if not items:
        return data
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def volume_files(pod_spec: Mapping[str, Any], read: ReadObject) -> dict[str, Files]:
    """Every configMap/secret/projected volume of ``pod_spec`` (camelCase dict) as in-memory files."""
    out: dict[str, Files] = {}
    for volume in pod_spec.get("volumes") or []:
        files: Files = {}
        if "configMap" in volume:
            src = volume["configMap"]
            files = _object_files(read("ConfigMap", src["name"]), src.get("items"))
        elif "secret" in volume:
            src = volume["secret"]
            files = _object_files(read("Secret", src["secretName"]), src.get("items"))
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                    if key in source:
                        files.update(_object_files(read(kind, source[key]["name"]), source[key].get("items")))
        else:
            continue
        out[volume["name"]] = files
    return out


def mounts_of(container: Mapping[str, Any]) -> dict[str, str]:
    """mountPath -> volume name of a container."""
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}


def resolve(path: str, mounts: Mapping[str, str]) -> tuple[str, str] | None:
    """The (volume, path inside it) that ``path`` names through ``mounts``, or None."""
    target = PurePosixPath(path)
    for mount_path, volume in sorted(mounts.items(), key=lambda m: -len(m[0])):
        with contextlib.suppress(ValueError):
            return volume, str(target.relative_to(mount_path))
    return None


def write_atomic(directory: Path, files: Mapping[str, bytes], mode: int = 0o400) -> bool:
    """Publish exactly ``files`` in ``directory`` (kubelet's AtomicWriter); False if nothing changed."""
    data_dir = directory / DATA_LINK
    if data_dir.is_dir():
        current = {str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
        if current == dict(files):
            return False
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9:09d}"
    stamp.mkdir()
    for rel, content in files.items():
        target = stamp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    old = str(data_dir.readlink()) if data_dir.is_symlink() else None
    tmp_link = directory / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    tmp_link.replace(data_dir)  # the atomic step
    for top in {PurePosixPath(rel).parts[0] for rel in files}:
        visible = directory / top
        if not visible.is_symlink():
            visible.symlink_to(f"{DATA_LINK}/{top}")
    if old is not None and old != stamp.name:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True


@dataclass(frozen=True)
class LocalConfig:
    """A config a local proxy process can run, and what it needs beside it."""

    text: str
    hash: str
    env: dict[str, str] = field(repr=False)
    files: dict[str, Files] = field(repr=False)  # volume -> the files of it the config names


def localise(
    text: str, mounts: Mapping[str, str], volumes: Mapping[str, Files], volume_dir: Callable[[str], Path]
) -> LocalConfig:
    """Rewrite the mounted paths of a rendered config for a process on this machine (see module doc)."""
    config = ProxyConfig.loads(text)
    env: dict[str, str] = {}
    files: dict[str, Files] = {}

    def local_path(path: str) -> str:
        found = resolve(path, mounts)
        if found is None or found[1] not in volumes.get(found[0], {}):
            return path  # left as is: the proxy refuses the config and says which file is missing
        volume, rel = found
        files.setdefault(volume, {})[rel] = volumes[volume][rel]
        return str(volume_dir(volume) / rel)

    upstreams = []
    for up in config.upstreams:
        found = resolve(up.api_key_file, mounts) if up.api_key_file else None
        content = volumes.get(found[0], {}).get(found[1]) if found else None
        if up.api_key_env and content is not None:
            env[up.api_key_env] = content.decode().strip()
            up = up.model_copy(update={"api_key_file": None})
        elif up.api_key_file:
            up = up.model_copy(update={"api_key_file": local_path(up.api_key_file)})
        upstreams.append(up)
    limits = config.limits
    tiers = [
        t.model_copy(update={"api_keys_file": local_path(t.api_keys_file)}) if t.api_keys_file else t
        for t in limits.tiers
    ]
    store = limits.store
    if store.password_file:
        store = store.model_copy(update={"password_file": local_path(store.password_file)})
    local = config.model_copy(
        update={"upstreams": upstreams, "limits": limits.model_copy(update={"tiers": tiers, "store": store})}
    ).with_hash()
    return LocalConfig(local.dumps(), local.hash, env, files)
