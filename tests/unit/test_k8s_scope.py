"""Whether kopf's namespace scanning is kept (llmroute.k8s.scope): the access review is asked only for
exact names, and only a clear "no" turns scanning off."""

from __future__ import annotations

import pytest

from llmroute.k8s.scope import exact_names, scanning_needed


@pytest.mark.parametrize(
    ("namespaces", "exact"),
    [
        ((), False),
        (("team-a",), True),
        (("team-a", "team-b"), True),
        (("team-*",), False),
        (("team-?",), False),
        (("!kube-system",), False),
        (("team-a,team-b",), False),
        (("team-a", "ops-*"), False),
    ],
)
def test_exact_names_are_plain_names_only(namespaces: tuple[str, ...], exact: bool) -> None:
    assert exact_names(namespaces) is exact


def test_scanning_is_kept_cluster_wide_and_for_patterns_without_asking() -> None:
    asked: list[int] = []

    def may_watch() -> bool:
        asked.append(1)
        return False

    assert scanning_needed((), may_watch)
    assert scanning_needed(("team-*",), may_watch)
    assert scanning_needed(("team-a", "!kube-system"), may_watch)
    assert asked == []


@pytest.mark.parametrize(("answer", "needed"), [(True, True), (None, True), (False, False)])
def test_exact_names_turn_scanning_off_only_on_a_clear_no(answer: bool | None, needed: bool) -> None:
    assert scanning_needed(("team-a", "team-b"), lambda: answer) is needed
