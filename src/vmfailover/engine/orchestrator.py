"""``Orchestrator``: runs plans under their leases, and takes over runs whose holder is gone.

Two or more orchestrators (one per site) share a journal and a lease store. Each run belongs to
its plan's lease: :meth:`Orchestrator.submit` takes the lease before the run starts (and is
refused while another orchestrator holds it), and every pass of the service loop
(:meth:`Orchestrator.run_once`, repeated by :meth:`Orchestrator.serve`) looks for interrupted runs
in the journal whose plan's lease is free or expired, takes the lease with a new, higher fencing
token and resumes the run from the journal (:meth:`~vmfailover.engine.runner.Runner.resume`).

Every run executes on a runner of its own whose backend is a
:class:`~vmfailover.engine.fenced.FencedBackend` (each mutating call asks the lease store first,
each read asks the holder's own deadline) and whose journal is a
:class:`~vmfailover.engine.fenced_journal.FencedJournal` (each write asks the lease store first),
both fenced by the run's :class:`~vmfailover.engine.lease_keeper.LeaseKeeper`. So a holder that
was paused past its lease and wakes after another took over makes no backend call and writes
nothing more: its run fails where it stands, unrecorded, and the new holder's run goes on.

Each pass also keeps the plans' deadlines (``auto_commit`` / ``auto_undo``) of every run in the
journal (:mod:`vmfailover.engine.deadlines`): a run whose deadline is due is committed or undone
under its plan's lease, taken for that action and given back after it; a plan whose lease
another orchestrator holds is left to that one. So a deadline outlives the process that set it,
and after a takeover the new active orchestrator keeps it.

Only runs of plans that were leased before are taken over (a run a plain
:class:`~vmfailover.engine.runner.Runner` started without a lease may still be running in a
process nobody fences); run a plan either through orchestrators or without them.

Events: :meth:`Orchestrator.subscribe` hears every run's events, as a runner's subscribers do;
a subscriber never changes a run. What the service itself does (a run submitted, taken over,
finished, fenced out) is logged on the ``vmfailover.orchestrator`` logger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import attrs

from vmfailover.backends.base import Backend
from vmfailover.engine.aftercare_results import Deadline
from vmfailover.engine.deadlines import (
    DEADLINE_KINDS,
    DEADLINE_STATES,
    DeadlineOutcome,
    act_on,
    pending_deadline,
)
from vmfailover.engine.events import RunEvent
from vmfailover.engine.fenced import FencedBackend
from vmfailover.engine.fenced_journal import FencedJournal
from vmfailover.engine.journal import Journal, RunSummary
from vmfailover.engine.lease import (
    MIN_LEASE_SECONDS,
    FencingToken,
    Lease,
    LeaseUnavailableError,
    checked_name,
    checked_ttl,
    default_holder,
)
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.run import Run
from vmfailover.engine.runner import Runner
from vmfailover.errors import ConflictError, NotFoundError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, as_enum, is_finite_number
from vmfailover.plan import FailoverPlan

__all__ = ["RUNNER_OPTIONS", "HeldRun", "Orchestrator"]

log = logging.getLogger("vmfailover.orchestrator")

#: What ``runner_options`` may set on the runner of each run.
RUNNER_OPTIONS = frozenset({"max_parallel", "retry", "readiness_timeout", "poll_interval", "clock"})

#: The longest pause between two passes of the service loop (an hour).
MAX_POLL_SECONDS = 3600.0


@attrs.frozen(eq=False)
class HeldRun:
    """A run this orchestrator executes now, under its plan's lease."""

    run: Run
    plan: str
    token: FencingToken
    resumed: bool
    """Taken over from the journal (True), or submitted to this orchestrator (False)."""

    @property
    def run_id(self) -> str:
        return self.run.id


@attrs.define(eq=False)
class _Tenure:
    """What one held run needs: its lease keeper, its own runner and its fenced journal."""

    held: HeldRun
    keeper: LeaseKeeper
    runner: Runner
    journal: FencedJournal
    unsubscribers: list[tuple[Callable[[RunEvent], None], Callable[[], None]]]
    lost_noted: bool = False


class Orchestrator:
    """A service that runs plans under their leases and takes over interrupted runs.

    ``journal`` is the journal the orchestrators share (reads, and writes unless
    ``journal_for`` is given); ``backend`` the backend every run acts on; ``lease`` the lease
    store the orchestrators share. ``name`` names this orchestrator (the lease holder is the
    name with this process's ``host:pid:random``). ``lease_seconds`` is each lease's length: a
    survivor takes over at most that long after the holder died. ``poll`` is the time between
    two passes of :meth:`serve`.

    ``journal_for`` (optional) opens, for a holder's token, a journal whose store fences every
    write with that token in the write's own statement (``lambda token: PostgresJournal(dsn,
    lease=lease, token=token)``); the orchestrator closes it when the run is over. Without it,
    writes go to ``journal`` after a fence check. ``runner_options`` are handed to the runner of
    each run (:data:`RUNNER_OPTIONS`). ``stop_timeout`` bounds how long :meth:`stop` waits for
    runs to wind down.
    """

    def __init__(
        self,
        journal: Journal,
        backend: Backend,
        lease: Lease,
        *,
        name: str,
        lease_seconds: float = 15.0,
        poll: float = 5.0,
        journal_for: Callable[[FencingToken], Journal] | None = None,
        runner_options: Mapping[str, Any] | None = None,
        stop_timeout: float = 60.0,
    ) -> None:
        if not isinstance(journal, Journal):
            raise ValidationError.of("Orchestrator journal", f"must be a Journal, got {journal!r}")
        if not isinstance(backend, Backend):
            raise ValidationError.of("Orchestrator backend", f"must be a Backend, got {backend!r}")
        if not isinstance(lease, Lease):
            raise ValidationError.of("Orchestrator lease", f"must be a Lease, got {lease!r}")
        if journal_for is not None and not callable(journal_for):
            raise ValidationError.of(
                "Orchestrator journal_for",
                f"must be callable (token -> Journal), got {journal_for!r}",
            )
        self.name = checked_name(name, "Orchestrator name")
        self.lease_seconds = checked_ttl(lease_seconds, "Orchestrator lease_seconds")
        self.poll = _seconds(poll, "Orchestrator poll")
        self.stop_timeout = _seconds(stop_timeout, "Orchestrator stop_timeout")
        self.runner_options = _runner_options(runner_options)
        probe = Runner(backend, **self.runner_options)  # bad options are refused here, not later
        probe.close()
        self._clock = probe.clock  # the runs' clock: deadlines fall due by it
        self.journal = journal
        self.backend = backend
        self.lease = lease
        self.journal_for = journal_for
        self.holder = checked_name(f"{self.name}/{default_holder()}", "Orchestrator holder")
        self._lock = threading.Lock()
        self._held: dict[str, _Tenure] = {}
        self._refused: dict[str, str] = {}
        self._subscribers: list[Callable[[RunEvent], None]] = []
        self._closed = False

    def __repr__(self) -> str:
        with self._lock:
            held = len(self._held)
        return f"Orchestrator({self.name!r}, holding {held} runs, lease {self.lease!r})"

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what it holds -------------------------------------------------------------------------

    def held(self) -> tuple[HeldRun, ...]:
        """The runs this orchestrator executes now."""
        with self._lock:
            return tuple(tenure.held for tenure in self._held.values())

    @property
    def refused(self) -> Mapping[str, str]:
        """Interrupted runs this orchestrator will not take over, and why (a resume that failed
        for a reason waiting does not cure, such as a plan with Python callables)."""
        with self._lock:
            return dict(self._refused)

    def subscribe(self, callback: Callable[[RunEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with every event of every run this orchestrator executes (now or
        later); returns a function that unsubscribes. As for a runner: one at a time, on a
        delivery thread, and a callback that raises never changes a run."""
        if not callable(callback):
            raise ValidationError.of(
                "Orchestrator.subscribe", f"needs a callable, got {callback!r}"
            )
        with self._lock:
            self._subscribers.append(callback)
            for tenure in self._held.values():
                tenure.unsubscribers.append((callback, tenure.runner.subscribe(callback)))

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
                found = []
                for tenure in self._held.values():
                    found += [pair for pair in tenure.unsubscribers if pair[0] is callback]
                    tenure.unsubscribers = [p for p in tenure.unsubscribers if p[0] is not callback]
            for _, stop in found:
                stop()

        return unsubscribe

    # --- starting runs -------------------------------------------------------------------------

    def submit(
        self,
        plan: FailoverPlan,
        kind: FailoverKind | str = FailoverKind.REGULAR,
        *,
        force: bool = False,
        weights: Mapping[str, float] | None = None,
    ) -> Run:
        """Take ``plan``'s lease and start a failover of ``kind`` in the background.

        Raises :class:`~vmfailover.errors.ConflictError` naming the holder when another
        orchestrator holds the plan's lease (or this one runs the plan already), and what
        :meth:`~vmfailover.engine.runner.Runner.start` raises for a plan that is refused (the
        lease is then given back).
        """
        if not isinstance(plan, FailoverPlan):
            raise ValidationError.of("Orchestrator.submit", f"needs a FailoverPlan, got {plan!r}")
        kind = as_enum(FailoverKind, kind, "Orchestrator.submit kind")
        with self._lock:
            self._check_open()
            running = self._running(plan.name)
        if running is not None:
            raise ConflictError(
                f"orchestrator {self.name!r} runs plan {plan.name!r} already (run {running})"
            )
        keeper = self._keeper(plan.name)
        try:
            keeper.acquire()
        except ConflictError as error:
            raise ConflictError(
                f"plan {plan.name!r} is run by another orchestrator: {error}"
            ) from None
        runner, fenced_journal = self._runner(keeper)
        try:
            run = runner.start(plan, kind=kind, force=force, weights=weights)
        except BaseException:
            _close_quietly(runner, fenced_journal)
            keeper.release()
            raise
        self._hold(
            HeldRun(run, plan.name, keeper.token, resumed=False), keeper, runner, fenced_journal
        )
        log.info(
            "%s: started run %s of plan %r under token %s",
            self.name,
            run.id,
            plan.name,
            keeper.token,
        )
        return run

    # --- the service loop ----------------------------------------------------------------------

    def run_once(self) -> tuple[str, ...]:
        """One pass: let go of runs that ended, then take over every interrupted run whose
        plan's lease is free or expired. Returns the ids of the runs taken over."""
        self._reap()
        try:
            runs = self.journal.runs()
        except VMFailoverError as error:
            log.warning("%s: cannot read the journal: %s", self.name, error)
            return ()
        taken = []
        for summary in runs:
            if summary.interrupted and self._take_over(summary):
                taken.append(summary.run_id)
        self._keep_deadlines(runs)
        return tuple(taken)

    def keep_deadlines(self) -> tuple[DeadlineOutcome, ...]:
        """Act on every plan deadline of the journal that is due now (each pass does it):
        commit or undo each such run under its plan's lease. Returns what was done."""
        try:
            runs = self.journal.runs()
        except VMFailoverError as error:
            log.warning("%s: cannot read the journal: %s", self.name, error)
            return ()
        return self._keep_deadlines(runs)

    def serve(self, stop_event: threading.Event) -> None:
        """Pass after pass, :attr:`poll` seconds apart, until ``stop_event`` is set; then
        :meth:`stop`. A pass that fails is logged and the next one tried."""
        if not isinstance(stop_event, threading.Event):
            raise ValidationError.of(
                "Orchestrator.serve", f"needs a threading.Event, got {stop_event!r}"
            )
        log.info("%s: serving as %s", self.name, self.holder)
        try:
            while not stop_event.is_set():
                try:
                    self.run_once()
                except VMFailoverError as error:
                    log.warning("%s: a pass failed: %s", self.name, error)
                stop_event.wait(self.poll)
        finally:
            self.stop()

    def stop(self) -> None:
        """Hand over: stop acting for every run held (each is fenced off at once: its next
        backend call and journal write are refused), wait up to ``stop_timeout`` seconds for
        them to wind down, and give their leases back, so another orchestrator takes the runs
        over at once instead of after expiry. A run still busy after the wait keeps its lease
        until it expires. Idempotent; the journal, backend and lease store stay open."""
        with self._lock:
            self._closed = True
            tenures = list(self._held.values())
        for tenure in tenures:
            if not tenure.held.run.done:
                tenure.keeper.fence_off(f"its orchestrator {self.name!r} is stopping")
                log.info("%s: handing run %s over", self.name, tenure.held.run_id)
        deadline = threading.Event()
        timer = threading.Timer(self.stop_timeout, deadline.set)
        timer.daemon = True
        timer.start()
        try:
            for tenure in tenures:
                while not tenure.held.run.done and not deadline.is_set():
                    deadline.wait(0.05)
        finally:
            timer.cancel()
        self._reap()
        with self._lock:
            left = list(self._held.values())
        for tenure in left:
            log.warning(
                "%s: run %s still busy after %g s; its lease expires by itself",
                self.name,
                tenure.held.run_id,
                self.stop_timeout,
            )

    close = stop

    # --- internals -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConflictError(f"orchestrator {self.name!r} is stopped")

    def _running(self, plan: str) -> str | None:
        """With the lock held: the run of ``plan`` this orchestrator holds, if any."""
        for run_id, tenure in self._held.items():
            if tenure.held.plan == plan:
                return run_id
        return None

    def _keeper(self, plan: str) -> LeaseKeeper:
        return LeaseKeeper(
            self.lease,
            plan,
            ttl=self.lease_seconds,
            holder=self.holder,
            acquire_timeout=MIN_LEASE_SECONDS,
        )

    def _runner(self, keeper: LeaseKeeper) -> tuple[Runner, FencedJournal]:
        """A runner whose backend and journal are fenced by ``keeper``."""
        own = self.journal_for is not None
        store = self.journal_for(keeper.token) if self.journal_for is not None else self.journal
        if not isinstance(store, Journal):
            raise ValidationError.of(
                "Orchestrator journal_for", f"must return a Journal, got {store!r}"
            )
        journal = FencedJournal(store, keeper, patience=self.lease_seconds, close_inner=own)
        backend = FencedBackend(self.backend, keeper, read_fence=keeper.check_local)
        # deadlines are kept by the passes, under the lease, not by a thread of each run's runner
        runner = Runner(backend, journal=journal, keep_deadlines=False, **self.runner_options)
        return runner, journal

    def _leased_runner(self, keeper: LeaseKeeper) -> tuple[Runner, FencedJournal]:
        """:meth:`_runner` for a lease just acquired, which is given back if that fails."""
        try:
            return self._runner(keeper)
        except BaseException:
            keeper.release()
            raise

    def _hold(
        self, held: HeldRun, keeper: LeaseKeeper, runner: Runner, journal: FencedJournal
    ) -> None:
        with self._lock:
            unsubscribers = [(cb, runner.subscribe(cb)) for cb in self._subscribers]
            self._held[held.run_id] = _Tenure(held, keeper, runner, journal, unsubscribers)

    def _take_over(self, summary: RunSummary) -> bool:
        """Take the plan's lease and resume ``summary``'s run, if the lease is free and the run
        is not held or refused here. True if this orchestrator now executes it."""
        with self._lock:
            if (
                self._closed
                or summary.run_id in self._held
                or summary.run_id in self._refused
                or self._running(summary.plan) is not None
            ):
                return False
        try:
            state = self.lease.state(summary.plan)
        except LeaseUnavailableError as error:
            log.warning("%s: cannot read the lease of plan %r: %s", self.name, summary.plan, error)
            return False
        if state is None or state.held:
            return False  # never leased (not an orchestrated run), or its holder is alive
        keeper = self._keeper(summary.plan)
        try:
            keeper.acquire()
        except ConflictError:
            return False  # another orchestrator was faster
        runner, journal = self._leased_runner(keeper)
        try:
            run = runner.resume(summary.run_id, takeover=True)
        except VMFailoverError as error:
            _close_quietly(runner, journal)
            keeper.release()
            if isinstance(error, ValidationError | NotFoundError):  # waiting does not cure it
                with self._lock:
                    self._refused[summary.run_id] = str(error)
                log.error("%s: cannot take run %s over: %s", self.name, summary.run_id, error)
            else:  # ended meanwhile, its VMs claimed here, a store not answering: next pass
                log.info("%s: run %s not taken over now: %s", self.name, summary.run_id, error)
            return False
        self._hold(HeldRun(run, summary.plan, keeper.token, resumed=True), keeper, runner, journal)
        log.warning(
            "%s: took run %s of plan %r over under token %s (its holder's lease %s)",
            self.name,
            summary.run_id,
            summary.plan,
            keeper.token,
            "was released" if state.released else "expired",
        )
        return True

    def _keep_deadlines(self, runs: tuple[RunSummary, ...]) -> tuple[DeadlineOutcome, ...]:
        """Act on the due deadlines among ``runs``, one run after another."""
        now = self._clock.now()
        outcomes = []
        for summary in runs:
            if summary.interrupted or summary.state not in DEADLINE_STATES:
                continue  # cheap: most runs are decided or running
            with self._lock:
                if self._closed or summary.run_id in self._held:
                    continue
            try:
                loaded = self.journal.load(summary.run_id, DEADLINE_KINDS)
            except VMFailoverError as error:
                log.warning("%s: cannot read run %s: %s", self.name, summary.run_id, error)
                continue
            deadline = pending_deadline(loaded.summary, loaded.entries)
            if deadline is not None and deadline.at <= now:
                outcome = self._act_on_deadline(summary, deadline)
                if outcome is not None:
                    outcomes.append(outcome)
        return tuple(outcomes)

    def _act_on_deadline(self, summary: RunSummary, deadline: Deadline) -> DeadlineOutcome | None:
        """Commit or undo ``summary``'s run under its plan's lease; None when another
        orchestrator holds the lease (it is that one's to act on) or runs the plan here."""
        with self._lock:
            if self._running(summary.plan) is not None:
                return None  # this orchestrator runs the plan: next pass, once it ended
        keeper = self._keeper(summary.plan)
        try:
            keeper.acquire()
        except (ConflictError, LeaseUnavailableError) as error:
            log.info(
                "%s: the deadline of run %s is not this one's now: %s",
                self.name,
                summary.run_id,
                error,
            )
            return None
        runner, journal = self._leased_runner(keeper)
        try:
            outcome = act_on(runner, summary.run_id, deadline)
        finally:
            _close_quietly(runner, journal)
            keeper.release()
        log.warning("%s: %s (under token %s)", self.name, outcome.summary(), keeper.token)
        return outcome

    def _reap(self) -> None:
        """Let go of runs that ended: flush their journal, give their lease back."""
        with self._lock:
            tenures = list(self._held.values())
        for tenure in tenures:
            lost = tenure.keeper.lost
            if lost is not None and not tenure.lost_noted:
                tenure.lost_noted = True
                log.warning(
                    "%s: run %s stops without acting: %s", self.name, tenure.held.run_id, lost
                )
            if not tenure.held.run.done:
                continue
            _close_quietly(tenure.runner, tenure.journal)
            tenure.keeper.release()
            for _, unsubscribe in tenure.unsubscribers:
                unsubscribe()
            with self._lock:
                self._held.pop(tenure.held.run_id, None)
            report = tenure.held.run.report
            pending = tenure.held.run.deadline
            log.info(
                "%s: run %s %s%s",
                self.name,
                tenure.held.run_id,
                f"ended {report.result.value}" if report is not None else "stopped",
                ""
                if pending is None
                else f"; automatic {pending.action.value} due {pending.at:%Y-%m-%d %H:%M:%S} "
                "UTC, kept by the active orchestrator",
            )


def _close_quietly(runner: Runner, journal: Journal) -> None:
    """Commit what the run's writer holds (a refused commit writes nothing) and close."""
    try:
        runner.close()
    except VMFailoverError as error:
        log.info("the journal of a run took no more entries: %s", error)
    finally:
        journal.close()


def _seconds(value: object, item: str) -> float:
    if not is_finite_number(value) or not 0 < value <= MAX_POLL_SECONDS:
        raise ValidationError.of(
            item, f"must be a finite number of seconds in (0, {MAX_POLL_SECONDS:g}], got {value!r}"
        )
    return float(value)


def _runner_options(options: object) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValidationError.of(
            "Orchestrator runner_options", f"must be a mapping of names to values, got {options!r}"
        )
    unknown = sorted(str(key) for key in options if key not in RUNNER_OPTIONS)
    if unknown:
        raise ValidationError.of(
            "Orchestrator runner_options",
            f"unknown option(s) {', '.join(unknown)}",
            f"use {', '.join(sorted(RUNNER_OPTIONS))}",
        )
    return dict(options)
