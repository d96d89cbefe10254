"""Which recovery points to test next when looking for the newest one that is still good.

After ransomware or a bad update the newest recovery point is the wrong one; the right one is the
newest that still passes a check, and every check costs a test boot. :class:`PointSearch` decides
which points to boot: it is told the verdicts and answers which points to test next, and never
boots, sleeps or reads a clock itself (the driver in :mod:`vmfailover.engine.clean_point` does).

Points are numbered ``0`` (oldest) to ``count - 1`` (newest). Two strategies:

- **bisection** (``monotone=True``): damage, once in, stays in every later point, so the good
  points are a prefix. The search keeps the range of possible answers (how many points are good,
  ``0`` to ``count``) and splits it: with ``parallel=1`` one point per round, at most
  ``ceil(log2(count + 1))`` boots; with ``parallel=m`` ``m`` points per round cut the range into
  ``m + 1`` parts, at most ``ceil(log_(m+1)(count + 1))`` rounds. Verdicts that contradict the
  assumption (an older point bad, a newer one good) are trusted where they are positive (a point
  that passed is good) and reported in :attr:`PointSearch.warnings`.
- **scan** (``monotone=False``): newest first, ``parallel`` points per round, until one passes;
  at most ``count`` boots.

Either way the answer is a point that was tested and passed, or ``None`` when none is good.

The search's life is a transition table (:data:`TRANSITIONS`, h11 style); an event the table does
not allow raises :class:`~vmfailover.errors.ConflictError` naming the event and the state.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

import attrs

from vmfailover._render import in_words, listing
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import RecoveryPoint, aware_utc

__all__ = [
    "TRANSITIONS",
    "PointSearch",
    "RecoveryMoment",
    "SearchEvent",
    "SearchState",
    "Verdict",
    "ceil_log",
    "recovery_moments",
]

#: The most points tested at once: far beyond any host's room for test copies.
MAX_PARALLEL = 64


class Verdict(enum.StrEnum):
    """What the check said of a point: ``good`` (it passed) or ``bad``."""

    GOOD = "good"
    BAD = "bad"


class SearchState(enum.StrEnum):
    """``deciding``: no tests out, :meth:`PointSearch.propose` hands out the next round;
    ``testing``: a round is out, waiting for its verdicts; ``finished``: the answer is known;
    ``cancelled``."""

    DECIDING = "deciding"
    TESTING = "testing"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class SearchEvent(enum.StrEnum):
    """What can happen to a search."""

    PROPOSE = "propose"
    VERDICT = "verdict"
    ROUND_DONE = "round_done"
    CONCLUDE = "conclude"
    CANCEL = "cancel"


TRANSITIONS: Final[Mapping[SearchState, Mapping[SearchEvent, SearchState]]] = MappingProxyType(
    {
        SearchState.DECIDING: MappingProxyType(
            {
                SearchEvent.PROPOSE: SearchState.TESTING,
                SearchEvent.CONCLUDE: SearchState.FINISHED,
                SearchEvent.CANCEL: SearchState.CANCELLED,
            }
        ),
        SearchState.TESTING: MappingProxyType(
            {
                SearchEvent.VERDICT: SearchState.TESTING,
                SearchEvent.ROUND_DONE: SearchState.DECIDING,
                SearchEvent.CANCEL: SearchState.CANCELLED,
            }
        ),
        SearchState.FINISHED: MappingProxyType({}),
        SearchState.CANCELLED: MappingProxyType({}),
    }
)
"""state -> event -> next state. Anything missing is illegal."""


def ceil_log(base: int, value: int) -> int:
    """The smallest ``r >= 0`` with ``base ** r >= value``: exact, in whole numbers."""
    if base < 2:
        raise ValidationError.of("ceil_log base", f"must be at least 2, got {base!r}")
    rounds, reach = 0, 1
    while reach < value:
        reach *= base
        rounds += 1
    return rounds


def _whole(value: object, item: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError.of(
            item, f"must be a whole number from {low} to {high}, got {value!r}"
        )
    return value


class PointSearch:
    """Which of ``count`` points (oldest first) to test next; told verdicts, it narrows down.

    Use: ``batch = search.propose()``; test those points (at once, up to ``parallel``);
    ``search.record(index, verdict)`` for each; repeat while ``search.state`` is ``deciding``.
    Then :attr:`answer` is the newest good point's index, or None.
    """

    def __init__(self, count: int, *, parallel: int = 1, monotone: bool = True) -> None:
        self.count = _whole(count, "PointSearch count", 0, 10**9)
        self.parallel = _whole(parallel, "PointSearch parallel", 1, MAX_PARALLEL)
        if not isinstance(monotone, bool):
            raise ValidationError.of(
                "PointSearch monotone", f"must be True or False, got {monotone!r}"
            )
        self.monotone = monotone
        self._state = SearchState.DECIDING
        self._verdicts: dict[int, Verdict] = {}
        self._order: list[int] = []
        self._outstanding: list[int] = []
        self._rounds = 0
        self._answer: int | None = None
        self._warnings: list[str] = []
        self._settle()

    def __repr__(self) -> str:
        low, high = self.bracket
        return (
            f"PointSearch({self.strategy}, count={self.count}, parallel={self.parallel}, "
            f"{self._state.value}, rounds={self._rounds}, tested={len(self._order)}, "
            f"possible good prefix {low}..{high})"
        )

    # --- reading ----------------------------------------------------------------------------------

    @property
    def state(self) -> SearchState:
        return self._state

    @property
    def strategy(self) -> str:
        """``bisect`` or ``scan``."""
        return "bisect" if self.monotone else "scan"

    @property
    def finished(self) -> bool:
        return self._state is SearchState.FINISHED

    @property
    def answer(self) -> int | None:
        """The newest good point's index (tested, passed), or None when none is good.

        Raises :class:`ConflictError` while the search has not finished.
        """
        if self._state is not SearchState.FINISHED:
            raise ConflictError(f"the point search is {in_words(self._state)}: no answer yet")
        return self._answer

    @property
    def verdicts(self) -> Mapping[int, Verdict]:
        """Every verdict so far, by point index."""
        return MappingProxyType(dict(self._verdicts))

    @property
    def tested(self) -> tuple[int, ...]:
        """The points handed out for testing, in the order they were handed out."""
        return tuple(self._order)

    @property
    def outstanding(self) -> tuple[int, ...]:
        """The points of the current round still waiting for a verdict."""
        return tuple(self._outstanding)

    @property
    def rounds(self) -> int:
        """Rounds handed out so far."""
        return self._rounds

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    @property
    def max_rounds(self) -> int:
        """The most rounds this search can take: ``ceil(log_(parallel+1)(count+1))`` bisecting,
        ``ceil(count / parallel)`` scanning (when the verdicts keep the monotone promise)."""
        if self.monotone:
            return ceil_log(self.parallel + 1, self.count + 1)
        return -(-self.count // self.parallel)

    @property
    def max_tests(self) -> int:
        """The most points this search can test: ``ceil(log2(count+1))`` bisecting one at a time,
        at most ``parallel`` per round otherwise, never more than ``count``."""
        return min(self.count, self.parallel * self.max_rounds)

    @property
    def bracket(self) -> tuple[int, int]:
        """The possible numbers of good points, ``(low, high)``, as far as the verdicts tell
        (bisecting; a scan reports what it has not ruled out)."""
        good = max((i for i, v in self._verdicts.items() if v is Verdict.GOOD), default=-1)
        if not self.monotone:
            if good >= 0:
                return good + 1, good + 1
            untested = [i for i in range(self.count) if i not in self._verdicts]
            return 0, (max(untested) + 1 if untested else 0)
        above = [i for i, v in self._verdicts.items() if v is Verdict.BAD and i > good]
        return good + 1, min(above, default=self.count)

    # --- events -----------------------------------------------------------------------------------

    def propose(self) -> tuple[int, ...]:
        """Hand out the next round: up to ``parallel`` point indices, newest first."""
        batch = self._next_round()
        self._fire(SearchEvent.PROPOSE)
        self._rounds += 1
        self._outstanding = list(batch)
        self._order.extend(batch)
        return batch

    def record(self, index: int, verdict: Verdict | str | bool) -> None:
        """The verdict on point ``index`` of the current round (True/False mean good/bad)."""
        if self._state is not SearchState.TESTING:
            self._fire(SearchEvent.VERDICT)  # raises, naming the state
        if index not in self._outstanding:
            raise ConflictError(
                f"point {index!r} is not waiting for a verdict "
                f"(waiting: {listing(self._outstanding, quoted=False) or 'none'})"
            )
        checked = _verdict(verdict)
        self._fire(SearchEvent.VERDICT)
        self._outstanding.remove(index)
        self._verdicts[index] = checked
        if not self._outstanding:
            self._fire(SearchEvent.ROUND_DONE)
            self._note_contradictions()
            self._settle()

    def cancel(self) -> None:
        """Stop: no more rounds (a finished or cancelled search cannot be cancelled)."""
        self._fire(SearchEvent.CANCEL)
        self._outstanding = []

    def _fire(self, event: SearchEvent) -> None:
        allowed = TRANSITIONS[self._state]
        if event not in allowed:
            raise ConflictError(
                f"point search: {event.value!r} is not allowed when {in_words(self._state)} "
                f"(allowed: {listing(allowed) or 'nothing'})"
            )
        self._state = allowed[event]

    # --- the strategies ---------------------------------------------------------------------------

    def _settle(self) -> None:
        """Conclude when the verdicts decide the answer."""
        low, high = self.bracket
        if low == high:
            self._answer = low - 1 if low else None
            self._fire(SearchEvent.CONCLUDE)

    def _next_round(self) -> tuple[int, ...]:
        low, high = self.bracket
        if not self.monotone:
            untested = [i for i in range(self.count - 1, -1, -1) if i not in self._verdicts]
            return tuple(untested[: self.parallel])
        possibilities = high - low + 1
        tests = min(self.parallel, possibilities - 1)
        # Cut the possible answers low..high into tests + 1 parts of nearly equal size; testing
        # the last point of each part but the last tells which part holds the answer.
        cuts = [low + -(-(j * possibilities) // (tests + 1)) - 1 for j in range(1, tests + 1)]
        return tuple(sorted(cuts, reverse=True))

    def _note_contradictions(self) -> None:
        good = max((i for i, v in self._verdicts.items() if v is Verdict.GOOD), default=-1)
        older_bad = sorted(i for i, v in self._verdicts.items() if v is Verdict.BAD and i < good)
        if self.monotone and older_bad:
            message = (
                f"the verdicts are not monotone: point {older_bad[-1]} failed but the newer "
                f"point {good} passed; the answer is a point that passed, but a newer good one "
                "may have been skipped (search with assume_monotone=False to scan every point)"
            )
            if message not in self._warnings:
                self._warnings.append(message)


def _verdict(value: object) -> Verdict:
    if isinstance(value, bool):
        return Verdict.GOOD if value else Verdict.BAD
    if isinstance(value, str) and value in {member.value for member in Verdict}:
        return Verdict(value)
    raise ValidationError.of("verdict", f"must be 'good', 'bad', True or False, got {value!r}")


# --- the candidates: points, or consistent moments of a group ----------------------------------


def _moment(value: object) -> datetime:
    return aware_utc(value, "RecoveryMoment at")  # type: ignore[arg-type]


def _points_table(value: object) -> Mapping[str, RecoveryPoint]:
    if not isinstance(value, Mapping) or not value:
        raise ValidationError.of("RecoveryMoment points", f"must map VMs to points, got {value!r}")
    return MappingProxyType(dict(value))


@attrs.frozen
class RecoveryMoment:
    """One moment a group of VMs could be recovered to: each VM's newest point at or before
    ``at``. For one VM, simply one of its points."""

    at: datetime = attrs.field(converter=_moment)
    points: Mapping[str, RecoveryPoint] = attrs.field(converter=_points_table, hash=False)

    @property
    def oldest(self) -> datetime:
        """When the oldest point of the moment was taken (a group's points differ by the skew
        of their replication)."""
        return min(point.created_at for point in self.points.values())


def recovery_moments(
    points: Mapping[str, Iterable[RecoveryPoint]] | Mapping[str, object],
    *,
    since: datetime | None = None,
) -> tuple[RecoveryMoment, ...]:
    """The moments a group can be recovered to consistently, oldest first.

    ``points`` maps each VM of the group to its replica's points. A moment is the time of any
    point at which every VM has a point at or before it; each VM then recovers to its newest such
    point (what ``FailoverPlan(recovery_point=<moment>)`` picks). Moments that pick the same
    points are one candidate. ``since`` drops moments before it.
    """
    if not isinstance(points, Mapping) or not points:
        raise ValidationError.of(
            "recovery_moments", f"needs the points of at least one VM, got {points!r}"
        )
    floor = aware_utc(since, "since") if since is not None else None
    by_vm: dict[str, list[RecoveryPoint]] = {}
    times: dict[str, list[datetime]] = {}
    for vm, listed in points.items():
        if isinstance(listed, str | bytes) or not isinstance(listed, Iterable):
            raise ValidationError.of(f"points of VM {vm!r}", f"must be a list, got {listed!r}")
        items = list(listed)
        for item in items:
            if not isinstance(item, RecoveryPoint):
                raise ValidationError.of(f"points of VM {vm!r}", f"{item!r} is not a RecoveryPoint")
        by_vm[vm] = sorted(items, key=lambda p: p.created_at)
        times[vm] = [p.created_at for p in by_vm[vm]]
    moments = sorted({p.created_at for listed in by_vm.values() for p in listed})
    found: list[RecoveryMoment] = []
    seen: set[tuple[str, ...]] = set()
    for moment in moments:
        chosen: dict[str, RecoveryPoint] = {}
        for vm, listed in by_vm.items():
            upto = bisect.bisect_right(times[vm], moment)
            if not upto:
                break
            chosen[vm] = listed[upto - 1]
        else:
            key = tuple(chosen[vm].id for vm in by_vm)
            if key in seen or (floor is not None and moment < floor):
                continue
            seen.add(key)
            found.append(RecoveryMoment(moment, chosen))
    return tuple(found)
