"""A stand-in for a fleet of proxies as Prometheus sees it: a real HTTP server whose ``/metrics`` speaks
the proxy's metric contract, with the load set over HTTP, so tests and the demo can drive the operator
through a real Prometheus without sending model traffic.

Counters integrate the configured rates over wall-clock time, so ``rate()`` in Prometheus returns exactly
the rate that was set. ``PUT /load`` with ``{"ns/route": {"rps": 120, "inflight": 8, "tokens": 900,
"upstreams": {"primary": {"share": 1.0, "error_rate": 0.0, "latency": 0.4}}}}`` replaces the load of
the routes named (``null`` removes a route). ``GET /load`` returns it.

As a process: ``python -m llmroute.testing.load_emitter --port 0`` prints ``listening <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROBE_RATE = 0.1
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass
class _Counter:
    value: float = 0.0
    rate: float = 0.0
    since: float = field(default_factory=time.time)

    def at(self, now: float) -> float:
        return self.value + self.rate * (now - self.since)

    def set_rate(self, rate: float, now: float) -> None:
        self.value, self.rate, self.since = self.at(now), rate, now


class LoadState:
    """Thread-safe map of routes to their load, and the counters that integrate it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.load: dict[str, dict[str, Any]] = {}
        self.counters: dict[tuple[str, ...], _Counter] = {}

    def _set(self, key: tuple[str, ...], rate: float, now: float) -> None:
        counter = self.counters.setdefault(key, _Counter(since=now))
        counter.set_rate(rate, now)

    def update(self, changes: dict[str, Any]) -> None:
        now = time.time()
        with self.lock:
            for route, spec in changes.items():
                if spec is None:
                    self.load.pop(route, None)
                    spec = {}
                else:
                    self.load[route] = spec
                rps = float(spec.get("rps", 0.0))
                upstreams = spec.get("upstreams") or {"primary": {"share": 1.0}}
                # zero every counter of the route, then set what is configured
                for key in [k for k in self.counters if k[1] == route]:
                    self._set(key, 0.0, now)
                for name, up in upstreams.items():
                    share, err = float(up.get("share", 1.0)), float(up.get("error_rate", 0.0))
                    ok, bad = rps * share * (1 - err), rps * share * err
                    self._set(("req", route, name, "200"), ok, now)
                    self._set(("req", route, name, "502"), bad, now)
                    self._set(("att", route, name, "ok"), ok, now)
                    self._set(("att", route, name, "status_502"), bad, now)
                    # the proxies' active probes of idle upstreams: a trickle with the same outcomes
                    self._set(("prb", route, name, "ok"), PROBE_RATE * (1 - err), now)
                    self._set(("prb", route, name, "status_502"), PROBE_RATE * err, now)
                    latency = float(up.get("latency", 0.2))
                    for le in (*LATENCY_BUCKETS, float("inf")):
                        self._set(("dur", route, name, repr(le)), rps * share if latency <= le else 0.0, now)
                    self._set(("dursum", route, name), rps * share * latency, now)
                tokens = float(spec.get("tokens", 0.0))
                self._set(("tok", route, "input"), tokens * 0.8, now)
                self._set(("tok", route, "output"), tokens * 0.2, now)

    def render(self) -> str:
        now = time.time()
        lines = {
            "req": ["# TYPE llmroute_requests_total counter"],
            "att": ["# TYPE llmroute_proxy_upstream_attempts_total counter"],
            "prb": ["# TYPE llmroute_proxy_upstream_probes_total counter"],
            "dur": ["# TYPE llmroute_request_duration_seconds histogram"],
            "tok": ["# TYPE llmroute_tokens_total counter"],
            "inf": ["# TYPE llmroute_inflight_requests gauge"],
        }
        with self.lock:
            for key, counter in sorted(self.counters.items()):
                v = counter.at(now)
                kind, route = key[0], key[1]
                if kind == "req":
                    labels = (
                        f'route="{route}",tier="default",upstream="{key[2]}",code="{key[3]}",cache="miss"'
                    )
                    lines["req"].append(f"llmroute_requests_total{{{labels}}} {v:.6f}")
                elif kind in ("att", "prb"):
                    labels = f'route="{route}",upstream="{key[2]}",outcome="{key[3]}"'
                    name = "attempts" if kind == "att" else "probes"
                    lines[kind].append(f"llmroute_proxy_upstream_{name}_total{{{labels}}} {v:.6f}")
                elif kind == "dur":
                    le = "+Inf" if key[3] == "inf" else key[3]
                    labels = f'route="{route}",tier="default",upstream="{key[2]}",le="{le}"'
                    lines["dur"].append(f"llmroute_request_duration_seconds_bucket{{{labels}}} {v:.6f}")
                    if key[3] == "inf":
                        base = f'route="{route}",tier="default",upstream="{key[2]}"'
                        lines["dur"].append(f"llmroute_request_duration_seconds_count{{{base}}} {v:.6f}")
                        total = self.counters.get(("dursum", route, key[2]))
                        s = total.at(now) if total else 0.0
                        lines["dur"].append(f"llmroute_request_duration_seconds_sum{{{base}}} {s:.6f}")
                elif kind == "tok":
                    labels = f'route="{route}",tier="default",direction="{key[2]}"'
                    lines["tok"].append(f"llmroute_tokens_total{{{labels}}} {v:.6f}")
            for route, spec in sorted(self.load.items()):
                inflight = float(spec.get("inflight", 0.0))
                lines["inf"].append(f'llmroute_inflight_requests{{route="{route}"}} {inflight}')
        return "\n".join(line for group in lines.values() for line in group) + "\n"


class _Handler(BaseHTTPRequestHandler):
    state: LoadState

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._send(200, self.state.render().encode(), "text/plain; version=0.0.4")
        elif self.path == "/load":
            with self.state.lock:
                self._send(200, json.dumps(self.state.load).encode())
        else:
            self._send(404, b"{}")

    def do_PUT(self) -> None:
        if self.path != "/load":
            self._send(404, b"{}")
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            changes = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("expected an object")
            self.state.update(changes)
        except (ValueError, TypeError) as exc:
            self._send(400, json.dumps({"error": str(exc)}).encode())
            return
        self._send(204, b"")

    def log_message(self, *args: object) -> None:
        pass


class LoadEmitter:
    """In-process server (thread); ``.target`` is the ``host:port`` for Prometheus to scrape."""

    def __init__(self, port: int = 0):
        self.state = LoadState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LoadEmitter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set(self, route: str, **spec: Any) -> None:
        self.state.update({route: spec})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    emitter = LoadEmitter(args.port).start()
    print(f"listening {emitter.server.server_address[1]}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        emitter.stop()


if __name__ == "__main__":
    main()
