"""Which recovery point a failover uses: the newest, the newest application-consistent one, or the
newest at or before a moment.

Pure: given the replica's points and the choice, the answer is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from vmfailover.errors import ValidationError
from vmfailover.model import Consistency, RecoveryPoint, as_items, aware_utc

__all__ = ["PointChoice", "choose_point"]

PointChoice = Literal["latest", "latest-application-consistent"] | datetime
"""Which recovery point a failover uses: the newest, the newest application-consistent one, or
the newest at or before a moment."""


def choose_point(points: Sequence[RecoveryPoint], choice: PointChoice) -> RecoveryPoint | None:
    """The recovery point ``choice`` names among ``points``, or None when none qualifies."""
    candidates: Iterable[RecoveryPoint] = as_items(
        points, RecoveryPoint, "choose_point points", "a RecoveryPoint"
    )
    if isinstance(choice, datetime):
        moment = aware_utc(choice, "recovery_point")
        candidates = [p for p in candidates if p.created_at <= moment]
    elif choice == "latest-application-consistent":
        candidates = [p for p in candidates if p.consistency is Consistency.APPLICATION]
    elif choice != "latest":
        raise ValidationError.of(
            "recovery_point",
            f"{choice!r} is not a recovery point choice",
            "use 'latest', 'latest-application-consistent' or a timezone-aware datetime",
        )
    return max(candidates, key=lambda p: p.created_at, default=None)
