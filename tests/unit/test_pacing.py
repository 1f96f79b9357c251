"""The limit pricing replay (:mod:`llmroute.sim.pacing`) against the proxy's own GCRA, one limit at a time:
every priced limit admits exactly what :func:`llmroute.core.gcra.evaluate` admits, whatever the order the
arrivals come in within the horizon."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.core import gcra
from llmroute.sim import pacing
from llmroute.sim.pacing import GRID, Pacer, Refusals, grid_up


def arrivals(seed: int, n: int = 2500) -> list[tuple[float, float]]:
    """Bursty arrivals ``(seconds, tokens)``: mostly under a second apart, sometimes minutes; a tenth of
    them without tokens (a 429 or an error logs none)."""
    rng = np.random.default_rng(seed)
    t, out = 1000.0, []
    for _ in range(n):
        t += float(rng.exponential(0.7) if rng.random() < 0.9 else rng.exponential(90.0))
        out.append((t, 0.0 if rng.random() < 0.1 else float(rng.integers(1, 5000))))
    return out


def admitted_by_the_proxy(seq: list[tuple[float, float]], limit: int, kind: gcra.Kind) -> float:
    tat, admitted = 0.0, 0.0
    for at, tokens in seq:
        cost = 1.0 if kind == "requests" else tokens
        if cost <= 0:
            continue
        ok, new_tat, _ = gcra.evaluate(tat, at, gcra.LimitCheck("k", limit, cost, kind))
        if ok:
            tat, admitted = new_tat, admitted + cost
    return admitted


@pytest.mark.parametrize("seed", [1, 2])
def test_every_priced_limit_admits_what_the_proxys_limiter_admits(seed: int) -> None:
    seq = arrivals(seed)
    requests, tokens = Refusals(strict=True), Refusals(strict=False)
    pacer = Pacer(requests, tokens)
    rng = np.random.default_rng(seed)
    window = 300.0  # seconds: arrivals come shuffled inside each window, flushed a window behind
    start = 0
    for end in range(1, len(seq) + 1):
        if end == len(seq) or seq[end][0] - seq[start][0] > window:
            chunk = seq[start:end]
            pacer.pending.extend(chunk[i] for i in rng.permutation(len(chunk)))
            pacer.flush(seq[start][0])  # everything before this window is replayed already
            start = end
    pacer.flush()
    got_requests, got_tokens = requests.admitted(), tokens.admitted()
    for index, limit in enumerate(GRID.astype(int).tolist()):
        assert got_requests[index] == pytest.approx(admitted_by_the_proxy(seq, limit, "requests"), abs=1e-6)
        if limit >= pacing.TOKENS_FLOOR:
            assert got_tokens[index] == pytest.approx(admitted_by_the_proxy(seq, limit, "tokens"), rel=1e-9)
    assert requests.sent == len(seq) and tokens.sent == sum(t for _, t in seq)


def test_token_limits_below_the_floor_are_not_priced() -> None:
    requests, tokens = Refusals(strict=True), Refusals(strict=False)
    pacer = Pacer(requests, tokens)
    pacer.pending.extend((60.0 * i, 10.0) for i in range(100))  # 10 tokens a minute
    pacer.flush()
    assert requests.smallest(1, 0.01) == 1  # one request a minute fits a limit of 1
    assert tokens.smallest(1, 0.01) == pacing.TOKENS_FLOOR and tokens.share(10) == 1.0


def test_shares_and_the_grid() -> None:
    r = Refusals(strict=True)
    assert r.smallest(1, 0.01) == 1 and r.share(1) == 0.0  # nothing sent refuses nothing
    assert grid_up(0.2) == 1 and grid_up(9) == 9 and grid_up(10.5) == 12 and grid_up(101) == 120
    assert grid_up(1e30) == int(GRID[-1])
    with pytest.raises(ValueError, match="not a priced limit"):
        r.share(11)
    mantissas = {int(str(int(v))[:2]) for v in GRID if v >= 10}
    assert mantissas <= set(pacing.MANTISSAS)
    steps = GRID[1:] / GRID[:-1]
    assert steps.max() <= 2.0 and steps[GRID[:-1] >= 10].max() <= 4 / 3 + 1e-9
