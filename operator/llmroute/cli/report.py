"""`llmroute report`: when the gateway is busy, who uses it and how, and what to change.

Sources: a per-minute trace CSV (``--trace``, the default), access logs (``--access-log FILE...``, ``-`` for
stdin, gzip read as such) or a route's Prometheus history (``--prometheus URL --route NAMESPACE/NAME``).
``--route-file`` gives the route's manifest: its time zone, tiers and scaling target shape the suggested
patch, which is checked to leave the route valid.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import yaml

from llmroute.cli.argtypes import number, overwrite_problem, plot_problem
from llmroute.cli.routefile import checked, route_document
from llmroute.prom.client import PromAuth, PrometheusError
from llmroute.sim import hourly, usagereport
from llmroute.sim.accesslog import ReadProgress, ReadStats, read, with_progress
from llmroute.sim.logstats import LogStats
from llmroute.sim.promsource import fetch
from llmroute.sim.report import analyse, render
from llmroute.sim.segments import Thresholds
from llmroute.sim.trace import default_trace, read_trace
from llmroute.spec.accesslog import canonical_time, problem
from llmroute.spec.base import check_timezone

FUTURE_SLACK = timedelta(days=1)  # an access-log line timed later than now plus this is skipped


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="usage patterns and suggested limits from a trace, access logs or Prometheus",
        description=__doc__.splitlines()[0].split(": ", 1)[-1] if __doc__ else None,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--trace", type=Path, help="per-minute trace CSV (default: the packaged ServeGen M-large)"
    )
    src.add_argument(
        "--access-log",
        nargs="+",
        metavar="FILE",
        help="access-log files (gzip welcome), - for stdin (default: --trace)",
    )
    src.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus URL to read the route's history from (default: --trace)",
    )
    p.add_argument(
        "--route",
        metavar="NAMESPACE/NAME",
        help="the route to read from Prometheus, or from access logs of several (default: --route-file's)",
    )
    p.add_argument("--days", type=number(int, 1), default=7, help="days of Prometheus history (default 7)")
    p.add_argument(
        "--route-file",
        type=Path,
        help="the route's manifest: time zone, tiers, scaling target (default: none)",
    )
    p.add_argument(
        "--timezone", help="IANA time zone for hours and weekdays (default: the route's, else UTC)"
    )
    p.add_argument(
        "--plot",
        type=Path,
        help="save the weekday x hour heat maps as an image, its format the suffix: .png, .svg, .pdf... "
        "(matplotlib; default: no image)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--top", type=number(int, 0), default=10, help="top clients to list, 0 or more (default 10)"
    )
    p.add_argument(
        "--heavy-factor",
        type=number(float, 1.0),
        default=Thresholds.heavy_factor,
        help="heavy: requests per active day at least this many times the median client's (default 5)",
    )
    p.add_argument(
        "--occasional-share",
        type=number(float, 0.0, 1.0),
        default=Thresholds.occasional_share,
        help="occasional: active on fewer than this share of the log's days (default 0.25) ...",
    )
    p.add_argument(
        "--occasional-requests-per-day",
        type=number(float, 0.0),
        default=Thresholds.occasional_requests_per_day,
        help="... or fewer requests than this per active day (default 10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    env = os.environ.get
    auth = p.add_argument_group("Prometheus auth (defaults: the operator's LLMROUTE_PROMETHEUS_* variables)")
    auth.add_argument(
        "--bearer-token-file",
        default=env("LLMROUTE_PROMETHEUS_BEARER_TOKEN_FILE", ""),
        help="file holding a bearer token (default: none)",
    )
    auth.add_argument(
        "--username", default=env("LLMROUTE_PROMETHEUS_USERNAME", ""), help="basic-auth user (default: none)"
    )
    auth.add_argument(
        "--password-file",
        default=env("LLMROUTE_PROMETHEUS_PASSWORD_FILE", ""),
        help="file holding the basic-auth password (default: none)",
    )
    auth.add_argument(
        "--ca-file",
        default=env("LLMROUTE_PROMETHEUS_CA_FILE", ""),
        help="CA certificate to verify Prometheus with (default: the system's)",
    )
    auth.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        default=env("LLMROUTE_PROMETHEUS_INSECURE_SKIP_VERIFY", "false").lower() == "true",
        help="do not verify Prometheus' TLS certificate (default: verify)",
    )
    auth.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra header, repeatable (default: none)",
    )


def _auth(args: argparse.Namespace) -> PromAuth:
    headers: dict[str, str] = {}
    raw = [*filter(None, os.environ.get("LLMROUTE_PROMETHEUS_HEADERS", "").split(",")), *args.header]
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--header {item!r} is not NAME=VALUE")
        headers[name.strip()] = value.strip()
    return PromAuth(
        bearer_token_file=args.bearer_token_file,
        username=args.username,
        password_file=args.password_file,
        ca_file=args.ca_file,
        insecure_skip_verify=args.insecure_skip_verify,
        headers=headers,
    )


def _route_doc(path: Path | None) -> dict[str, Any] | None:
    """The first LLMRoute of ``path`` as a mapping, checked to be a valid route (the patch is built on it);
    raises ``RouteFileError``."""
    if path is None:
        return None
    _, doc = route_document(path)
    checked(path, doc)
    return doc


def _timezone(args: argparse.Namespace, route: dict[str, Any] | None) -> str:
    if args.timezone:
        return check_timezone(args.timezone)
    spec = (route or {}).get("spec") or {}
    for section in ("scaling", "rateLimits"):
        for schedule in (spec.get(section) or {}).get("schedules") or []:
            if schedule.get("timezone"):
                return check_timezone(schedule["timezone"])
    return "UTC"


def _progress(args: argparse.Namespace) -> Any:
    return None if args.quiet else (lambda line: print(f"llmroute report: {line}", file=sys.stderr))


ANOTHER_ROUTE = "another route"


def _route_notes(routes: list[str], want: str | None, route: dict[str, Any] | None) -> list[str]:
    """What to say when the log mixes routes, or the route file is not a route the report read."""
    notes = []
    if want is None and len(routes) > 1:
        notes.append(f"the log holds {len(routes)} routes ({', '.join(routes)}): the figures mix them; "
                     "--route NAMESPACE/NAME reads one")  # fmt: skip
    name = ((route or {}).get("metadata") or {}).get("name")
    read_names = [r.rpartition("/")[2] for r in routes if want is None or r == want]
    if name is not None and name not in read_names:
        notes.append(f"the route file is {name}, the report read {want or ', '.join(routes)}: "
                     "the patch is for the route file's route")  # fmt: skip
    return notes


def _from_log(args: argparse.Namespace, tz: str, route: dict[str, Any] | None) -> dict[str, Any]:
    read_stats = ReadStats()
    say = _progress(args)
    progress = ReadProgress(read_stats, say) if say else None
    stats = LogStats(tz)
    add = stats.add
    want = args.route
    routes: dict[Any, int] = {}  # records by route, before choosing one
    not_after = canonical_time((datetime.now(UTC) + FUTURE_SLACK).isoformat())  # clocks a day off at most
    for record in with_progress(read(args.access_log, read_stats, not_after), progress):
        name = record.get("route")
        routes[name] = routes.get(name, 0) + 1
        if want is not None and name != want:
            read_stats.skip(ANOTHER_ROUTE, f"{name} (request_id {record.get('request_id')!r})")
            continue
        try:
            add(record)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            said = problem(record) or f"time: {exc}"  # the fields' types are right: the time is not
            read_stats.skip_field(said, f"request_id {record.get('request_id')!r}")
    stats.finish()
    if not stats.requests:
        raise ValueError(f"the access log holds no requests ({read_stats.summary()})")
    thresholds = Thresholds(args.heavy_factor, args.occasional_share, args.occasional_requests_per_day)
    report = usagereport.from_log(stats, thresholds, route, args.top)
    report["routes"] = {str(k): n for k, n in sorted(routes.items(), key=lambda kv: -kv[1])}
    report["notes"][:0] = _route_notes(list(report["routes"]), want, route)
    report["input"] = {
        "lines": read_stats.lines,
        "records": read_stats.records,
        "skipped": read_stats.skipped,
        "skipped_examples": read_stats.examples,
        "skipped_fields": read_stats.fields,
        "summary": read_stats.summary(),
        "lines_per_second": round(progress.rate()) if progress else None,
    }
    return report


def run(args: argparse.Namespace) -> int:
    inputs = [("--trace", args.trace), ("--route-file", args.route_file)]
    inputs += [("--access-log", Path(log)) for log in args.access_log or ()]
    problem = args.plot and (plot_problem(args.plot) or overwrite_problem([("--plot", args.plot)], inputs))
    if problem:
        print(f"llmroute report: {problem}", file=sys.stderr)
        return 2
    try:
        route = _route_doc(args.route_file)
        tz = _timezone(args, route)
        if args.access_log:
            report = _from_log(args, tz, route)
        elif args.prometheus:
            if not args.route or "/" not in args.route:
                raise ValueError("--prometheus needs --route NAMESPACE/NAME")
            usage = fetch(args.prometheus, args.route, args.days, datetime.now(UTC), _auth(args),
                          progress=_progress(args))  # fmt: skip
            report = usagereport.from_prometheus(usage, tz, route)
        else:
            trace = read_trace(args.trace or default_trace())
            for note in trace.notes:
                print(f"llmroute report: {trace.name}: {note}", file=sys.stderr)
            report = analyse(trace, tz)
            report["profile"] = hourly.profile(
                hourly.from_minutes(trace.start, trace.requests, _tokens(trace)), tz
            )
    except (OSError, ValueError, ZoneInfoNotFoundError, PrometheusError, yaml.YAMLError) as exc:
        print(f"llmroute report: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        try:
            hourly.plot_heatmap(
                report["profile"], str(args.plot), f"llmroute report: {report.get('source', 'trace')}"
            )
        except RuntimeError as exc:
            print(f"llmroute report: {exc}", file=sys.stderr)
            return 2
    if args.json:
        text = json.dumps(finite(report), indent=2, allow_nan=False)
    elif "source" in report:
        text = usagereport.render(report)
    else:
        heat = report["profile"]["heatmap"]
        text = "\n".join([render(report), *hourly.render_heatmap(heat["requests"], "requests")])
    print(text)  # a closed stdout (`| head`) ends the command quietly (llmroute.cli.main)
    return 0


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite (an overflow, 0/0) as ``None``: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _tokens(trace: Any) -> Any:
    if trace.input_tokens is None or trace.output_tokens is None:
        return None
    return trace.input_tokens + trace.output_tokens
