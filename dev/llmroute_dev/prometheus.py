"""A real Prometheus on loopback with a temporary TSDB.

Two ways to feed it: live scraping of targets listed in a file-SD file (picked up within a second), and
backfilled history written with ``promtool tsdb create-blocks-from openmetrics`` before start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmroute_dev.procs import Process, free_port, wait_for


@dataclass(frozen=True)
class Series:
    """One backfilled series: ``samples`` are (unix seconds, value); counters get the ``_total`` suffix."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]
    kind: str = "gauge"  # or "counter"


def to_openmetrics(series: Iterable[Series]) -> str:
    """Render series as OpenMetrics text (grouped by metric family, as promtool requires)."""
    families: dict[str, list[Series]] = {}
    for s in series:
        families.setdefault(s.name, []).append(s)
    out: list[str] = []
    for name, members in families.items():
        kind = members[0].kind
        out.append(f"# TYPE {name} {kind}")
        sample_name = f"{name}_total" if kind == "counter" else name
        for s in members:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            for ts, value in s.samples:
                out.append(f"{sample_name}{{{labels}}} {value:.6g} {ts:.3f}")
    out.append("# EOF")
    return "\n".join(out) + "\n"


@dataclass
class Prometheus:
    workdir: Path
    scrape_interval: str = "1s"
    backfill: Sequence[Series] = ()
    port: int = 0
    process: Process | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_file(self) -> Path:
        return self.workdir / "targets.json"

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus not found: `make system-deps` installs Debian's package")
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        if self.backfill:
            self.write_history(self.backfill, data)
        if not self.targets_file.exists():
            self.set_targets([])
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": [
                {
                    "job_name": "llmroute",
                    "scrape_interval": self.scrape_interval,
                    "scrape_timeout": self.scrape_interval,
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = self.port or free_port()
        self.process = Process(
            "prometheus",
            [
                binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=60d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                "--query.lookback-delta=2m",
                *self.extra_args,
            ],
            self.workdir / "logs" / "prometheus.log",
        ).start()
        proc = self.process

        def ready() -> bool:
            proc.check_alive()
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_for(ready, timeout=60, what="prometheus")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def set_targets(self, targets: Sequence[str], labels: Mapping[str, str] | None = None) -> None:
        """Scrape exactly ``targets`` (host:port) from now on; written atomically for file SD."""
        doc = [{"targets": list(targets), "labels": dict(labels or {})}] if targets else []
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.targets_file)

    @staticmethod
    def write_history(series: Sequence[Series], data_dir: Path) -> None:
        """Backfill ``series`` into ``data_dir`` as TSDB blocks (Prometheus must not be running on it)."""
        promtool = shutil.which("promtool")
        if promtool is None:
            raise FileNotFoundError("promtool not found: `make system-deps` installs Debian's prometheus")
        src = data_dir.parent / "backfill.om"
        src.write_text(to_openmetrics(series))
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(src), str(data_dir)],
            check=True,
            capture_output=True,
        )
        src.unlink()

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql} | ({"time": str(time)} if time is not None else {})
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": promql, "start": str(start), "end": str(end), "step": str(step)}
        return self._get("/api/v1/query_range", params)

    def _get(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result
