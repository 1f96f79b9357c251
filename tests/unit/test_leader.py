"""Leader election settings and identities (the election itself runs on the real node: tests/node/test_ha)."""

from __future__ import annotations

import pytest

from llmroute.k8s.leader import ElectionSettings, identity


def test_timing_must_let_the_holder_renew_before_the_lease_expires() -> None:
    ElectionSettings("llmroute", "ns", 8, 6, 1)
    for lease, renew, retry in ((7, 7, 1), (10, 1, 1), (10, 11, 1), (3, 2, 0)):
        with pytest.raises(ValueError, match=r"lease > renew deadline > 1\.2 x retry"):
            ElectionSettings("llmroute", "ns", lease, renew, retry)


def test_each_process_is_a_new_candidate_named_after_its_pod() -> None:
    first, second = identity("llmroute-abc"), identity("llmroute-abc")
    assert first.rsplit("_", 1)[0] == "llmroute-abc" and first != second
