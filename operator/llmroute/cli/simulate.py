"""`llmroute simulate`: replay a traffic trace through llmroute, the Kubernetes HPA, static and oracle.

Without ``--trace`` it uses the trace shipped with the package (7 days of Alibaba ServeGen M-large).
Without ``--route`` it uses the default LLMRoute with the scaling target at 80 % of ``--capacity-rps``.
Minutes without data before the first and after the last known minute are not replayed; what the reader
adjusted in the file, the cut and the gaps inside are said on stderr. Bad input is one line on stderr
naming the file, line and column, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmroute import KIND
from llmroute.cli.argtypes import number, output_problem, overwrite_problem, plot_problem
from llmroute.cli.routefile import RouteFileError, checked, invalid, manifests, read_documents
from llmroute.sim.output import plot, summary_dict, summary_text, write_timeline
from llmroute.sim.policies import stderr_progress
from llmroute.sim.run import POLICIES, SimulationSettings, replicas_limit, route_spec, simulate
from llmroute.sim.trace import Trace, default_trace, known_part, read_trace
from llmroute.spec.route import LLMRouteSpec

LONG_RUN_MINUTES = 1440
STARTUP_LIMIT = 3600.0  # s: a longer start-up is a misconfiguration (the oracle's lead grows with it)
CAPACITY_LIMIT = 1e9  # the default route's target (80 % of it) stays within targetPerReplica's bound


def _number(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return x


def _positive(value: str) -> float:
    x = _number(value)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return x


def _non_negative(value: str) -> float:
    x = _number(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return x


def _non_negative_at_most(limit: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        x = _non_negative(value)
        if x > limit:
            raise argparse.ArgumentTypeError(
                f"at most {limit:g} (an hour: no replica takes longer), got {value}"
            )
        return x

    return parse


def _at_most(limit: float, what: str) -> Callable[[str], float]:
    def parse(value: str) -> float:
        x = _positive(value)
        if x > limit:
            raise argparse.ArgumentTypeError(f"at most {limit:g} ({what}), got {value}")
        return x

    return parse


def _utilisation(value: str) -> float:
    x = _number(value)
    if not 0 < x <= 2:
        raise argparse.ArgumentTypeError(f"a target utilisation is in (0, 2], got {value}")
    return x


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="replay a traffic trace through the scaling policies",
        description=__doc__.splitlines()[0].split(": ", 1)[-1] if __doc__ else None,
    )
    p.add_argument(
        "--trace",
        type=Path,
        help="per-minute trace CSV, gzip read as such (default: the packaged ServeGen M-large)",
    )
    p.add_argument(
        "--route", type=Path, help="LLMRoute YAML, its first LLMRoute used (default: the default route)"
    )
    p.add_argument(
        "--policy", action="append", choices=POLICIES, help="policy to run (repeatable; default all)"
    )
    p.add_argument("--out", type=Path, required=True, help="write the per-minute timeline CSV here")
    p.add_argument(
        "--plot",
        type=Path,
        help="draw demand, capacity and replicas to this image, its format the suffix: .png, .svg, .pdf... "
        "(needs matplotlib; default: no plot)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument(
        "--peak-replicas",
        type=_at_most(replicas_limit(), "the most replicas a route may have"),
        help="scale the trace so its busiest minute needs N replicas (default: the trace's own volume)",
    )
    scale.add_argument(
        "--peak-rps",
        type=_positive,
        help="scale the trace so its busiest minute is R req/s (default: the trace's own volume)",
    )
    p.add_argument(
        "--capacity-rps",
        type=_at_most(CAPACITY_LIMIT, "a route's targetPerReplica is at most 1e9"),
        default=50.0,
        help="req/s one replica serves (default 50)",
    )
    p.add_argument(
        "--startup-seconds",
        type=_non_negative_at_most(STARTUP_LIMIT),
        default=60.0,
        help=f"seconds before a new replica serves, 0 to {STARTUP_LIMIT:g} (default 60)",
    )
    p.add_argument(
        "--hpa-target",
        type=_utilisation,
        nargs="+",
        metavar="U",
        help="HPA target utilisation(s) of capacity (default: the route's target); several run side by side",
    )
    p.add_argument("--no-frontier", action="store_true", help="skip the HPA cost-frontier sweep")
    p.add_argument(
        "--minutes",
        type=number(int, 1),
        help="simulate only the first N minutes of the trace, at least 1 (default: all)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _error(message: str) -> int:
    print(f"llmroute simulate: {message}", file=sys.stderr)
    return 2


def _os_error(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)


def _route(path: Path) -> LLMRouteSpec:
    """The first LLMRoute manifest (checked as ``llmroute validate`` checks it) or bare spec mapping of
    ``path``; raises ``RouteFileError``."""
    for _, doc in manifests(path, read_documents(path)):
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            return checked(path, doc).spec
        try:
            spec = route_spec(doc) if isinstance(doc, dict) else None
        except ValidationError as exc:
            raise invalid(path, exc) from None
        if spec is not None:
            return spec
    raise RouteFileError(f"{path}: no LLMRoute in the file (no document has kind: LLMRoute or upstreams)")


def load(args: argparse.Namespace) -> Trace:
    """The trace to replay: read, cut to ``--minutes`` and to its minutes with data; says on stderr what
    the reader adjusted and where data is missing. Raises ``OSError`` and ``ValueError``."""
    trace = read_trace(args.trace or default_trace())
    notes = list(trace.notes)
    if args.minutes is not None:
        if args.minutes > trace.minutes:
            notes.append(f"--minutes {args.minutes}: the trace has {trace.minutes}, all replayed")
        trace = trace.head(args.minutes)
    trace, more = known_part(trace)
    for note in notes + more:
        print(f"llmroute simulate: {trace.name}: {note}", file=sys.stderr)
    return trace


def run(args: argparse.Namespace) -> int:
    problem = (
        output_problem(args.out, "--out")
        or (args.plot and plot_problem(args.plot))
        or overwrite_problem(
            [("--out", args.out), ("--plot", args.plot)], [("--trace", args.trace), ("--route", args.route)]
        )
    )
    if problem:
        return _error(problem)
    try:
        trace = load(args)
        spec = _route(args.route) if args.route else None
    except OSError as exc:
        return _error(_os_error(exc))
    except ValueError as exc:
        return _error(str(exc))
    settings = SimulationSettings(
        capacity_rps=args.capacity_rps,
        startup_seconds=args.startup_seconds,
        peak_replicas=args.peak_replicas,
        peak_rps=args.peak_rps,
        policies=tuple(dict.fromkeys(args.policy or POLICIES)),
        hpa_targets=tuple(args.hpa_target or ()),
        frontier=not args.no_frontier,
    )
    progress = None
    if not args.quiet and trace.minutes > LONG_RUN_MINUTES:
        print(f"simulating {trace.minutes} minutes of {trace.name}", file=sys.stderr)
        progress = stderr_progress()
    try:
        result = simulate(trace, spec, settings, progress=progress)
    except ValueError as exc:
        return _error(str(exc))
    try:
        write_timeline(result, args.out)
        if args.plot:
            plot(result, args.plot)
    except OSError as exc:
        return _error(_os_error(exc))
    except RuntimeError as exc:
        return _error(str(exc))
    if args.json:
        print(json.dumps(summary_dict(result), indent=2))
    else:
        print(summary_text(result))
        print(f"timeline: {args.out}" + (f", plot: {args.plot}" if args.plot else ""))
    return 0
