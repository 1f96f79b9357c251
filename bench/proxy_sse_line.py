"""Benchmark: the proxy's stream scanner on one long SSE line arriving in 64 KiB pieces (prints JSON).

A line held back until its end must cost time linear in its length: the scanner runs on the event loop, so
a quadratic cost (copying the held bytes again with every piece) would stall every other request while
one upstream streams a long line. Reported: seconds and MB/s per line length, and the ratio of the per-MiB
cost of the longest line to the shortest (about 1 when linear).

Usage: ``python -m bench.proxy_sse_line`` (about a second).
"""

from __future__ import annotations

import json
import time

from llmroute.proxy.tokens import StreamScan

PIECE = 64 * 1024
LENGTHS_MIB = (1, 4, 16)


def seconds_for(mib: int, repeats: int = 3) -> float:
    """Best of ``repeats``: feed a ``mib`` MiB line in 64 KiB pieces, then its end."""
    piece = b"x" * PIECE
    best = float("inf")
    for _ in range(repeats):
        scan = StreamScan()
        began = time.perf_counter()
        for _ in range(mib * 1024 * 1024 // PIECE):
            scan.feed(piece)
        scan.feed(b"\n")
        best = min(best, time.perf_counter() - began)
    return best


def main() -> int:
    rows = {mib: seconds_for(mib) for mib in LENGTHS_MIB}
    per_mib = {mib: s / mib for mib, s in rows.items()}
    out = {
        "benchmark": "proxy_sse_line",
        "piece_bytes": PIECE,
        "lines": [
            {"mib": mib, "seconds": round(s, 5), "mb_per_s": round(mib * 1.048576 / s, 1)}
            for mib, s in rows.items()
        ],
        "per_mib_cost_longest_over_shortest": round(per_mib[LENGTHS_MIB[-1]] / per_mib[LENGTHS_MIB[0]], 2),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
