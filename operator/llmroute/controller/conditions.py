"""KEP-1623 conditions: set one, keeping ``lastTransitionTime`` unless the status actually changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from llmroute.spec.status import CONDITION_TYPES, Condition

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    previous = next((c for c in conditions if c.type == type_), None)
    since = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        last_transition_time=since,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != type_]
    order: dict[str, int] = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted([*others, updated], key=lambda c: order.get(c.type, len(order)))


def get(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def transitioned(before: Sequence[Condition], after: Sequence[Condition], type_: str) -> bool:
    old, new = get(before, type_), get(after, type_)
    return (old.status if old else None) != (new.status if new else None)
