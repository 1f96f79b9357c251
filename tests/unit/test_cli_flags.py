"""The long-running commands (proxy, operator, release-routes) refuse a flag out of range when they start,
naming the flag, with exit 2: never a port taken modulo 65536, a NaN interval that stops the config
reloader, an infinite drain that ignores SIGTERM, a log level or leader-election timing that ends in a
traceback. An environment variable that gives a flag's default is checked as the flag is. simulate says
what a flag takes when its value is not a number at all, as it does for one out of range."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from llmroute.cli.main import main

PROXY = ["proxy", "--config", "config.json"]
RELEASE = ["release-routes", "--operator-namespace", "ns", "--operator-deployment", "op"]


@pytest.fixture(autouse=True)
def never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command the flags let through fails the test at once instead of serving or calling the API."""

    def started(args: argparse.Namespace) -> int:
        raise AssertionError(f"started with {vars(args)}")

    for module in ("llmroute.cli.proxy", "llmroute.cli.release"):
        monkeypatch.setattr(importlib.import_module(module), "run", started)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([*PROXY, "--port", "70000"], "argument --port: '70000' is not an integer from 0 to 65535"),
        ([*PROXY, "--port", "-1"], "argument --port: '-1' is not an integer from 0 to 65535"),
        ([*PROXY, "--metrics-port", "65536"], "argument --metrics-port: '65536' is not an integer"),
        ([*PROXY, "--reload-interval", "nan"], "argument --reload-interval: 'nan' is not a number"),
        ([*PROXY, "--reload-interval", "0"], "argument --reload-interval: '0' is not a number from 0.01"),
        ([*PROXY, "--shutdown-timeout", "-1"], "argument --shutdown-timeout: '-1' is not a number from 0"),
        ([*PROXY, "--drain-seconds", "inf"], "argument --drain-seconds: 'inf' is not a number from 0"),
        ([*PROXY, "--log-level", "loud"], "argument --log-level: 'loud' is not a log level (DEBUG, INFO"),
        ([*RELEASE, "--timeout", "nan"], "argument --timeout: 'nan' is not a number from 0 to 86400"),
    ],
)
def test_a_flag_out_of_range_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LLMROUTE_PORT", "abc", "argument --port: 'abc' is not an integer"),
        ("LLMROUTE_PROXY_METRICS_PORT", "99999", "argument --metrics-port: '99999' is not an integer"),
        ("LLMROUTE_LOG_LEVEL", "verbose", "argument --log-level: 'verbose' is not a log level"),
    ],
)
def test_an_environment_default_is_checked_as_its_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        main(PROXY)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_the_log_level_is_read_in_any_case() -> None:
    from llmroute.cli.argtypes import log_level

    assert log_level("warning") == "WARNING" and log_level(" Debug ") == "DEBUG"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--leader-elect", "--leader-elect-lease-seconds", "2"], "lease > renew deadline > 1.2 x retry"),
        (["--leader-elect", "--leader-elect-retry-period-seconds", "0"], "got 8/6/0 s"),
        (["--leader-elect", "--peering", "p"], "use either --leader-elect or --peering, not both"),
    ],
)
def test_the_operator_refuses_election_flags_that_cannot_work_before_starting(
    capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    assert main(["operator", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmroute operator: ") and says in err, err
    assert "--leader-elect" in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--capacity-rps", "abc"], "argument --capacity-rps: must be a number, got 'abc'"),
        (["--peak-rps", "fast"], "argument --peak-rps: must be a number, got 'fast'"),
        (["--peak-replicas", "ten"], "argument --peak-replicas: must be a number, got 'ten'"),
        (["--startup-seconds", "1m"], "argument --startup-seconds: must be a number, got '1m'"),
        (["--hpa-target", "80%"], "argument --hpa-target: must be a number, got '80%'"),
        (["--minutes", "0"], "argument --minutes: '0' is not an integer from 1"),
        (["--minutes", "-5"], "argument --minutes: '-5' is not an integer from 1"),
    ],
)
def test_simulate_names_the_flag_and_what_it_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--out", str(tmp_path / "o.csv"), *flags])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before the trace is read or anything written
