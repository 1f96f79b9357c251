"""The demo (``make demo``, i.e. ``python -m llmroute_dev demo``) as a smoke test of the whole system:
control plane, Prometheus, operator, real proxies kept at the Deployment's replica count by the local pod
runner, trace-shaped load and an upstream outage. The short run (120 s of traffic, a day of the trace at
720x) must scale up, fail over and fail back, and leave no process or directory behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def test_demo_scales_up_fails_over_and_back_then_cleans_up(tmp_path: Path) -> None:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "dev"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1", PYTHONPATH=pythonpath)
    argv = [sys.executable, "-m", "llmroute_dev", "demo", "--duration", "120", "--speed", "720"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=330, env=env, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for line in ("ok    scaled up", "ok    failed over to backup", "ok    failed back to primary"):
        assert line in result.stdout, output
    assert "ScaledUp:" in result.stdout and "FailedOver:" in result.stdout and "FailedBack:" in result.stdout
    assert "demo passed" in result.stdout
    assert not list(tmp_path.glob("llmroute-demo-*")), "the working directory was left behind"
    assert not _processes_mentioning(str(tmp_path)), "child processes were left running"
