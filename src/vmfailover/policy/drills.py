"""Whether a recovery drill may run now: is it due, and would it harm production or a person's
pending look.

A drill is a scheduled test failover of a plan followed by its cleanup. It is *due* when a slot of
its schedule (:class:`~vmfailover.policy.schedule.Schedule`, as the replication jobs') has passed
since the last drill started; a driver that was down for a week runs one drill, not seven.

A due drill is *skipped*, with the reason recorded, when running it could harm production or
hide something a person must look at first:

- a production run (planned or regular) of the same plan, or of any VM in it, is not settled:
  it is in progress, or failed over and not yet committed or undone (anything but committed,
  undone or failed back);
- a test run of the same plan or of any VM in it is still running (the previous drill, or a
  test someone started by hand): drills never overlap;
- a test run of the same plan or of any VM in it ended and its cleanup did not prove the
  inventory restored: its copies, or the differences, are still there for a person to see.

Pure: the runs are given as :class:`RunView` values; nothing here reads a clock or a journal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from vmfailover._render import listing
from vmfailover.errors import ValidationError
from vmfailover.model import FailoverKind, as_enum, aware_utc
from vmfailover.policy.schedule import Schedule

__all__ = [
    "PRODUCTION_SETTLED",
    "TEST_IN_PROGRESS",
    "DrillOutcome",
    "RunView",
    "drill_due",
    "settled",
    "skip_reason",
]

PRODUCTION_SETTLED = frozenset({"committed", "undone", "failed_back"})
"""The states in which a production run no longer holds its VMs for a drill's sake."""

TEST_IN_PROGRESS = frozenset({"pending", "validating", "running"})
"""The states of a test run that has not ended its recovery."""


def settled(kind: FailoverKind, state: str) -> bool:
    """Whether a run of ``kind`` in ``state`` is done with its VMs (it can never block a
    drill): a production run committed, undone or failed back; a test run cleaned up."""
    if kind is FailoverKind.TEST:
        return state == "cleaned_up"
    return state in PRODUCTION_SETTLED


class DrillOutcome(enum.StrEnum):
    """How a drill ended: ``passed`` (every VM ready, cleanup proven, within its limits),
    ``failed`` (any of those not so), ``skipped`` (not run, for the reason recorded)."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError.of("RunView vms", f"expected VM names, got {value!r:.80}")
    names = tuple(value)
    if not all(isinstance(name, str) for name in names):
        raise ValidationError.of("RunView vms", f"expected VM names, got {names!r:.80}")
    return names


def _text(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError.of(f"RunView {attribute.name}", f"must be text, got {value!r:.80}")


def _kind(value: object) -> FailoverKind:
    return as_enum(FailoverKind, value, "RunView kind")


@attrs.frozen
class RunView:
    """What the decision needs of one run: its id, plan, kind, state and VMs (by name)."""

    run_id: str = attrs.field(validator=_text)
    plan: str = attrs.field(validator=_text)
    kind: FailoverKind = attrs.field(converter=_kind)
    state: str = attrs.field(validator=_text)
    vms: tuple[str, ...] = attrs.field(converter=_names)

    @property
    def production(self) -> bool:
        return self.kind is not FailoverKind.TEST


def drill_due(schedule: Schedule, last_started: datetime | None, now: datetime) -> bool:
    """Whether a drill on ``schedule`` last started at ``last_started`` is due at ``now``: a
    slot has passed since (a drill that never ran is due at once)."""
    return schedule.due(last_started, aware_utc(now, "now"))


def skip_reason(plan: str, vms: Iterable[str], runs: Iterable[RunView]) -> str | None:
    """Why a drill of ``plan`` (over ``vms``) must not run now, or None if it may.

    ``runs`` are every run known (journal and runner); the first blocking one found, production
    before test, gives the reason, naming the run, its state and the VMs it shares.
    """
    wanted = set(vms)
    for run in sorted(runs, key=lambda r: (not r.production, r.run_id)):
        shared = sorted(wanted.intersection(run.vms))
        if (run.plan != plan and not shared) or settled(run.kind, run.state):
            continue
        what = f"of plan {run.plan!r}" if run.plan == plan else f"holding {listing(shared)}"
        if run.production:
            settle = (
                "it is in progress"
                if run.state in TEST_IN_PROGRESS or run.state.endswith("ing")
                else "commit or undo it first"
            )
            return (
                f"production {run.kind.value} run {run.run_id} {what} is "
                f"{run.state.replace('_', ' ')}: {settle}"
            )
        if run.state in TEST_IN_PROGRESS:
            return f"test run {run.run_id} {what} is still running: drills never overlap"
        return (
            f"test run {run.run_id} {what} ended {run.state.replace('_', ' ')} and its "
            f"cleanup has not proven the inventory restored: a person must look first "
            f"(vmfailover cleanup {run.run_id})"
        )
    return None
