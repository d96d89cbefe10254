"""The members a scheduler or driver is given: one item or a collection, each named once.

The replication :class:`~vmfailover.engine.scheduler.Scheduler` and the
:class:`~vmfailover.engine.drills.DrillDriver` both take "a job or a list of jobs" (drills), and
both must refuse a member of the wrong type and two members with one name, all at once, naming
each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar, cast

from vmfailover.errors import Finding, ValidationError
from vmfailover.model import is_collection

__all__ = ["named_members"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_M = TypeVar("_M", bound=_Named)


def named_members(
    given: object, kind: type[_M], *, owner: str, parameter: str, noun: str, place: str
) -> tuple[list[_M], list[Finding]]:
    """``given`` (one ``kind`` or a collection of them) as a list of its valid members, and a
    finding for each member that is not a ``kind`` or repeats a name (``noun`` and ``place``
    say it: "job 'nightly' appears twice in the scheduler").

    Raises :class:`ValidationError` (``"{owner} {parameter}"``) when ``given`` is neither.
    """
    if not isinstance(given, kind) and not is_collection(given):
        raise ValidationError.of(
            f"{owner} {parameter}", f"expected {kind.__name__}s, got {given!r:.80}"
        )
    listed = [given] if isinstance(given, kind) else list(cast(Iterable[object], given))
    members: list[_M] = []
    findings: list[Finding] = []
    names: set[str] = set()
    for member in listed:
        if not isinstance(member, kind):
            findings.append(Finding(f"{member!r:.80}", f"is not a {kind.__name__}"))
        elif member.name in names:
            findings.append(Finding(f"{noun} {member.name!r}", f"appears twice in {place}"))
        else:
            names.add(member.name)
            members.append(member)
    return members, findings
