"""KEP-1623 conditions: set one, keeping ``lastTransitionTime`` unless the status actually changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from llmroute.spec.status import CONDITION_TYPES, Condition, ConditionType

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: Status,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """``conditions`` with ``type_`` replaced (or added), sorted in :data:`CONDITION_TYPES` order.

    ``now`` is an RFC 3339 timestamp; it becomes ``lastTransitionTime`` only if ``status`` differs from
    the previous condition's. Messages are cut at the API's 32 KiB bound."""
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
    """The condition of ``type_``, or ``None``."""
    return next((c for c in conditions if c.type == type_), None)
