"""Hypothesis, for the property tests (``test_fuzz_*``): one profile, deterministic and database-less, so
that CI runs the same examples every time and nothing is written to the source tree (Hypothesis keeps its
cache of the source's constants under ``out/hypothesis``, which git ignores)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "out" / "hypothesis")
settings.register_profile(
    "llmroute",
    derandomize=True,  # the same examples on every run: a failure is reproduced by running the test again
    database=None,
    deadline=None,  # the tiers' own timeouts bound a test; a slow first example is not a failure
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=False,
)
settings.load_profile("llmroute")
