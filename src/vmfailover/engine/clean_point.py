"""Clean-point search: the newest recovery point that passes a check, found with few test boots.

After ransomware or a bad update the newest point is the wrong one. The search boots test copies
of candidate points, exactly as a test failover does (the runner's own execution: an isolated copy
of the replica at the point, NICs onto the isolated test networks, the test addresses, power on,
readiness), runs the check on each booted copy (:mod:`vmfailover.engine.point_checks`), removes
the copies, and tells the pure strategy (:class:`~vmfailover.policy.clean_point.PointSearch`) the
verdicts, which answers what to boot next: bisection when damage stays once in, a newest-first
scan when it may come and go.

A group of VMs that must be recovered to one consistent moment is searched together: a candidate
is a moment, each VM booted from its newest point at or before it, and the moment is good when
every VM's check passes.

Promises: sources and replicas are never touched (copies land only on isolated networks; the
test failover's own checks refuse anything else, before a copy exists); the VMs are claimed for
the search, so no failover acts on them meanwhile; every copy is removed when its check is done,
also when the check raises, the search is cancelled (:meth:`CleanPointSearch.cancel`) or
interrupted (KeyboardInterrupt); the result proves the inventory afterwards equals the inventory
before; every wait has a timeout.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import cast

import attrs

from vmfailover.backends.base import Backend
from vmfailover.clock import Signal, Ticket
from vmfailover.engine.claims import claims_for
from vmfailover.engine.clean_point_result import CleanPointResult, PointVerdict, SearchedGroup
from vmfailover.engine.execution import Execution
from vmfailover.engine.point_checks import (
    BootedCopy,
    Check,
    CheckFunction,
    CleanPointError,
    checks_for,
    run_check,
)
from vmfailover.engine.results import CleanupResult, Outcome, RunReport
from vmfailover.engine.runner import Runner
from vmfailover.errors import ConflictError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, Inventory, aware_utc, parse_seconds
from vmfailover.plan import CompiledPlan, FailoverPlan
from vmfailover.plan.check import Facts
from vmfailover.policy.clean_point import (
    MAX_PARALLEL,
    PointSearch,
    RecoveryMoment,
    SearchState,
    Verdict,
    recovery_moments,
)
from vmfailover.policy.inventory_diff import inventory_differences
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.probes import PROBE_TYPES, Probe
from vmfailover.policy.reip import ReIPRules
from vmfailover.policy.sequencer import StartOrder

__all__ = ["DEFAULT_TIMEOUT", "CleanPointSearch", "find_clean_point"]

#: Seconds a copy gets to become ready, and a check to answer, unless told otherwise.
DEFAULT_TIMEOUT = 600.0

#: Clock seconds a trial may take beyond its boot and check (backend calls and their retries,
#: removing the copies) before the search gives up on it.
TRIAL_ALLOWANCE = 3600.0


@attrs.define
class _Group:
    number: int
    vms: tuple[str, ...]
    checks: dict[str, CheckFunction | tuple[str, ...] | Probe | None]
    plan: FailoverPlan | None = None
    candidates: tuple[RecoveryMoment, ...] = ()


@attrs.define
class _Trial:
    """How one trial ended, handed from its worker to the driver."""

    index: int
    round: int
    started_at: datetime
    finished_at: datetime | None = None
    verdict: Verdict | None = None  # None: cancelled, or an error
    reason: str = ""
    copies: tuple[str, ...] = ()
    error: BaseException | None = None


def find_clean_point(
    backend: Backend,
    vms: str | Iterable[str | Iterable[str]],
    check: Check | Mapping[str, Check],
    *,
    parallel: int = 1,
    assume_monotone: bool = True,
    since: datetime | timedelta | float | str | None = None,
    network: NetworkMapping | Mapping[str, str] | str | None = None,
    reip: ReIPRules | None = None,
    timeout: float | str | None = None,
) -> CleanPointResult:
    """The newest recovery point of each VM (or group) that passes ``check``, with a verdict for
    every point tried; see :class:`CleanPointSearch` for the arguments. Blocks until done;
    Ctrl-C stops it, removes its copies and re-raises."""
    return CleanPointSearch(
        backend,
        vms,
        check,
        parallel=parallel,
        assume_monotone=assume_monotone,
        since=since,
        network=network,
        reip=reip,
        timeout=timeout,
    ).run()


class CleanPointSearch:
    """A clean-point search: :meth:`run` it here, or :meth:`start` it in a thread and
    :meth:`wait` for it or :meth:`cancel` it.

    - ``vms``: a VM (name or id), or a list whose items are VMs (each searched on its own) or
      lists of VMs (a group recovered to one consistent moment, searched together).
    - ``check``: a callable given a :class:`~vmfailover.engine.point_checks.BootedCopy`
      returning True (good) or False, an argv command (exit 0 is good), or a readiness probe
      (:mod:`vmfailover.policy.probes`); or a mapping VM -> check (VMs left out are judged by
      booting to readiness).
    - ``parallel``: points tested at once (each a test copy per VM; the backend must be able to
      hold that many copies of one replica: the memory and vSphere backends can, Hyper-V Replica
      makes one test copy per replica, so use ``parallel=1`` there).
    - ``assume_monotone``: damage, once in, stays in every later point: bisect (at most
      ``ceil(log2(n+1))`` boots one at a time, ``ceil(log_(m+1)(n+1))`` rounds of ``m``).
      ``False`` scans newest first.
    - ``since``: consider only points at or after this moment (a datetime), or within this long
      before now (seconds, a timedelta or a duration such as ``"7d"``).
    - ``network``: where the copies' NICs go, which must be isolated networks: a
      :class:`NetworkMapping` (its test table), a mapping source network -> test network, or one
      test network name for every NIC. ``None`` leaves them where replication put them (refused
      unless those are isolated).
    - ``reip``: :class:`ReIPRules` for the copies' addresses (default: unchanged).
    - ``timeout``: seconds (or ``"10m"``) a copy gets to become ready, and a check to answer;
      default a probe's own timeout, else 600.
    """

    def __init__(
        self,
        backend: Backend,
        vms: str | Iterable[str | Iterable[str]],
        check: Check | Mapping[str, Check],
        *,
        parallel: int = 1,
        assume_monotone: bool = True,
        since: datetime | timedelta | float | str | None = None,
        network: NetworkMapping | Mapping[str, str] | str | None = None,
        reip: ReIPRules | None = None,
        timeout: float | str | None = None,
    ) -> None:
        if not isinstance(backend, Backend):
            raise ValidationError.of(
                "find_clean_point backend",
                f"{backend!r} is not a backend",
                "open one by name with vmfailover.backends.open_backend('memory')",
            )
        if isinstance(parallel, bool) or not isinstance(parallel, int):
            raise ValidationError.of("parallel", f"must be a whole number, got {parallel!r}")
        if not 1 <= parallel <= MAX_PARALLEL:
            raise ValidationError.of(
                "parallel", f"must be from 1 to {MAX_PARALLEL}, got {parallel}"
            )
        if not isinstance(assume_monotone, bool):
            raise ValidationError.of(
                "assume_monotone", f"must be True or False, got {assume_monotone!r}"
            )
        if reip is not None and not isinstance(reip, ReIPRules):
            raise ValidationError.of("reip", f"must be ReIPRules or None, got {reip!r}")
        groups = _groups(vms)
        self.backend = backend
        self.parallel = parallel
        self.assume_monotone = assume_monotone
        self.id = f"cp-{uuid.uuid4().hex[:8]}"
        checks = checks_for(check, [vm for group in groups for vm in group])
        self._groups = [
            _Group(number, group, {vm: checks[vm] for vm in group})
            for number, group in enumerate(groups, start=1)
        ]
        self._since = _since(since)
        self._network = _network(network)
        self._reip = reip
        self.timeout = self._timeout(timeout)
        largest = max(len(group.vms) for group in self._groups)
        self._runner = Runner(backend, max_parallel=largest, readiness_timeout=self.timeout)
        self.clock = self._runner.clock
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._stopping = threading.Event()
        self._executions: dict[str, Execution] = {}
        self._waits: set[Signal] = set()
        self._finished: deque[_Trial] = deque()
        self._wakeup: Signal | None = None
        self._in_flight = 0
        self._removed: list[str] = []
        self._cleanup_errors: list[str] = []
        self._started = False
        self._done = threading.Event()
        self._result: CleanPointResult | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        names = ", ".join(" + ".join(group.vms) for group in self._groups)
        state = "done" if self.done else ("running" if self._started else "not started")
        return f"CleanPointSearch({self.id}, [{names}], parallel={self.parallel}, {state})"

    def _timeout(self, timeout: object) -> float:
        if timeout is not None:
            return parse_seconds(timeout, "timeout")
        probe_timeouts = [
            cast(Probe, check).timeout
            for group in self._groups
            for check in group.checks.values()
            if isinstance(check, PROBE_TYPES)
        ]
        return max(probe_timeouts, default=DEFAULT_TIMEOUT)

    # --- the handle -------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def result(self) -> CleanPointResult | None:
        """The result once the search has ended normally (or was cancelled)."""
        return self._result

    def run(self) -> CleanPointResult:
        """Search in this thread and return the result (re-raising what stopped it)."""
        ticket = self._begin()
        self._execute(ticket)
        return self.wait(0)

    def start(self) -> CleanPointSearch:
        """Search in a thread of its own; returns this search (:meth:`wait`, :meth:`cancel`)."""
        ticket = self._begin()
        threading.Thread(
            target=self._execute, args=(ticket,), name=f"vmfailover-{self.id}", daemon=True
        ).start()
        return self

    def wait(self, timeout: float | None = None) -> CleanPointResult:
        """Block until the search ends (at most ``timeout`` real seconds) and return its result.

        Raises ConflictError if it is still running after ``timeout``, and re-raises what
        stopped the search if it did not end normally.
        """
        if timeout is not None:
            timeout = parse_seconds(timeout, "CleanPointSearch.wait timeout", allow_zero=True)
        if not self._started:
            raise ConflictError(f"search {self.id} has not been started: call run() or start()")
        if not self._done.wait(timeout):
            raise ConflictError(f"search {self.id} is still running after {timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop: nothing new boots, copies being tested stop at their next step and are removed;
        the result says which points were judged. Idempotent."""
        self._cancelled.set()
        self._stop_trials()

    def _begin(self) -> Ticket:
        with self._lock:
            if self._started:
                raise ConflictError(f"search {self.id} has been started already")
            self._started = True
        return self.clock.enlist()

    # --- the search -------------------------------------------------------------------------------

    def _execute(self, ticket: Ticket) -> None:
        try:
            with ticket:
                self._result = self._search_all()
        except BaseException as error:  # handed to wait(), which re-raises it
            self._error = error
        finally:
            self._done.set()

    def _search_all(self) -> CleanPointResult:
        started = self.clock.now()
        facts = self._preflight()
        claims = claims_for(self.backend)
        claims.claim(self.id, _touched(self._groups, facts.inventory))
        try:
            results: list[SearchedGroup] = []
            pool = ThreadPoolExecutor(self.parallel, thread_name_prefix=self.id)
            try:
                for group in self._groups:
                    results.append(self._search(group, facts, pool))
            except BaseException as error:
                self._stop_trials()
                self._drain()
                cleanup = self._prove(facts.inventory)
                error.add_note(f"clean-point search {self.id}: {cleanup.summary()}")
                raise
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
            cleanup = self._prove(facts.inventory)
        finally:
            claims.release(self.id)
        warnings = []
        if not cleanup.restored:
            warnings.append(f"the inventory was not restored: {cleanup.summary()}")
        return CleanPointResult(
            search_id=self.id,
            groups=tuple(results),
            started_at=started,
            finished_at=self.clock.now(),
            cleanup=cleanup,
            cancelled=self._cancelled.is_set(),
            warnings=tuple(warnings),
        )

    def _preflight(self) -> Facts:
        """Read the inventory and the points once; resolve each group's candidates and check
        that its test failover would be allowed, before any copy exists."""
        everything = [vm for group in self._groups for vm in group.vms]
        facts = self._runner._facts(FailoverPlan(f"clean point {self.id}", everything))
        inventory = facts.inventory
        since = self._since(facts.now) if self._since is not None else None
        network = self._network(inventory, everything) if self._network is not None else None
        for group in self._groups:
            order = StartOrder()
            for vm in group.vms:
                check = group.checks[vm]
                order.add(vm, probe=check if isinstance(check, PROBE_TYPES) else None)  # type: ignore[arg-type]
            group.plan = FailoverPlan(
                f"clean point {' + '.join(group.vms)}",
                group.vms,
                order=order,
                network=network,
                test_reip=self._reip,
            )
            points = {vm: facts.points.get(inventory.replica_of(vm).id, ()) for vm in group.vms}
            group.candidates = recovery_moments(points, since=since)
            if group.candidates:
                self._compile(group, group.candidates[-1], facts)  # refuses before anything exists
        return facts

    def _compile(self, group: _Group, candidate: RecoveryMoment, facts: Facts) -> CompiledPlan:
        assert group.plan is not None
        plan = attrs.evolve(group.plan, recovery_point=candidate.at)
        compiled = plan.compile(
            facts.inventory, FailoverKind.TEST, points=facts.points, now=facts.now
        )
        for work in compiled.vms:
            if work.point != candidate.points[work.name]:  # pragma: no cover - a planner bug
                raise CleanPointError(
                    f"the test failover of {work.name} at {candidate.at:%Y-%m-%d %H:%M:%S} "
                    f"would use {work.point!r}, not {candidate.points[work.name].id!r}"
                )
        return compiled

    def _search(self, group: _Group, facts: Facts, pool: ThreadPoolExecutor) -> SearchedGroup:
        started = self.clock.now()
        search = PointSearch(
            len(group.candidates), parallel=self.parallel, monotone=self.assume_monotone
        )
        verdicts: list[PointVerdict] = []
        while search.state is SearchState.DECIDING:
            if self._stopping.is_set():
                search.cancel()
                break
            batch = search.propose()
            trials = self._round(group, batch, search.rounds, facts, pool)
            for trial in trials:
                if trial.verdict is not None:
                    verdicts.append(self._verdict(group, trial))
            errors = [trial.error for trial in trials if trial.error is not None]
            if errors:
                raise errors[0]
            if any(trial.verdict is None for trial in trials):
                search.cancel()
                break
            for trial in trials:
                assert trial.verdict is not None
                search.record(trial.index, trial.verdict)
        answer = search.answer if search.finished else None
        return SearchedGroup(
            vms=group.vms,
            strategy=search.strategy,
            parallel=self.parallel,
            candidates=group.candidates,
            verdicts=tuple(verdicts),
            clean=group.candidates[answer] if answer is not None else None,
            rounds=search.rounds,
            max_rounds=search.max_rounds,
            max_boots=search.max_tests,
            started_at=started,
            finished_at=self.clock.now(),
            complete=search.finished,
            warnings=search.warnings,
        )

    def _verdict(self, group: _Group, trial: _Trial) -> PointVerdict:
        candidate = group.candidates[trial.index]
        assert trial.verdict is not None
        assert trial.finished_at is not None
        return PointVerdict(
            index=trial.index,
            moment=candidate.at,
            points={vm: point.id for vm, point in candidate.points.items()},
            verdict=trial.verdict,
            reason=trial.reason,
            round=trial.round,
            started_at=trial.started_at,
            finished_at=trial.finished_at,
            copies=trial.copies,
        )

    def _round(
        self,
        group: _Group,
        batch: tuple[int, ...],
        number: int,
        facts: Facts,
        pool: ThreadPoolExecutor,
    ) -> list[_Trial]:
        """Test ``batch`` at once; wait (bounded) for every trial; stop the rest on an error."""
        for index in batch:
            ticket = self.clock.enlist()
            with self._lock:
                self._in_flight += 1
            pool.submit(self._trial_work, group, index, number, facts, ticket)
        done: dict[int, _Trial] = {}
        limit = 2 * self.timeout + TRIAL_ALLOWANCE
        deadline = self.clock.monotonic() + limit
        while len(done) < len(batch):
            left = deadline - self.clock.monotonic()
            finished = self._take_finished(max(min(left, TRIAL_ALLOWANCE), 1.0))
            if finished is None:
                if left <= 0:
                    raise CleanPointError(
                        f"round {number} of {' + '.join(group.vms)} did not finish within "
                        f"{limit:g} s: its test copies are being stopped"
                    )
                continue
            for trial in finished:
                done[trial.index] = trial
                if trial.error is not None:
                    self._stop_trials()
        return [done[index] for index in batch]

    def _take_finished(self, wait: float = TRIAL_ALLOWANCE) -> list[_Trial] | None:
        """What finished since last asked, or None after waiting (at most ``wait``) for it."""
        with self._lock:
            finished = list(self._finished)
            self._finished.clear()
            if finished:
                return finished
            wakeup = self._wakeup = self.clock.signal()
        self.clock.wait(wakeup, wait)
        return None

    def _trial_work(
        self, group: _Group, index: int, number: int, facts: Facts, ticket: Ticket
    ) -> None:
        with ticket:
            trial = _Trial(index, number, self.clock.now())
            try:
                self._trial(group, trial, facts)
            except BaseException as error:  # the driver decides what it means
                trial.error = error
            trial.finished_at = self.clock.now()
            with self._lock:
                self._finished.append(trial)
                self._in_flight -= 1
                wakeup, self._wakeup = self._wakeup, None
            if wakeup is not None:
                wakeup.set()

    def _trial(self, group: _Group, trial: _Trial, facts: Facts) -> None:
        """Boot the candidate as a test failover, judge it, remove its copies."""
        candidate = group.candidates[trial.index]
        key = f"{self.id}-{group.number}-{trial.index}"
        compiled = self._compile(group, candidate, facts)
        execution = Execution(
            self._runner, key, compiled, weights=None, reachable_sources=frozenset()
        )
        with self._lock:
            if self._stopping.is_set():
                trial.reason = "cancelled before it started"
                return
            self._executions[key] = execution
        try:
            report = execution.execute()
            verdict = self._judge(group, candidate, report)
            if verdict is not None:
                trial.verdict, trial.reason = verdict
        finally:
            with self._lock:
                self._executions.pop(key, None)
            trial.copies = self._remove(execution.running_copies())

    def _judge(
        self, group: _Group, candidate: RecoveryMoment, report: RunReport
    ) -> tuple[Verdict, str] | None:
        """The verdict on a booted candidate, None when the search is stopping."""
        several = len(group.vms) > 1
        for result in report.vms:
            if result.outcome is Outcome.READY:
                continue
            if self._stopping.is_set():
                return None
            if result.powered_on_at is None:
                raise CleanPointError(
                    f"the test copy of {result.vm} at {candidate.points[result.vm].id} could "
                    f"not be started: {result.reason}"
                )
            reason = result.reason or result.outcome.value
            return Verdict.BAD, f"{result.vm}: {reason}" if several else reason
        passed: list[str] = []
        for result in report.vms:
            check = group.checks[result.vm]
            if check is None:
                passed.append("ready")
                continue
            if isinstance(check, PROBE_TYPES):
                passed.append(cast(Probe, check).describe())
                continue
            command = cast(CheckFunction | tuple[str, ...], check)
            assert result.runs_as is not None
            readiness = self._runner._call(self.backend.readiness, result.runs_as)
            copy = BootedCopy(
                vm=result.vm,
                vm_id=result.runs_as,
                point=candidate.points[result.vm],
                moment=candidate.at,
                readiness=readiness,
                backend=self.backend,
            )
            wake = self.clock.signal()
            with self._lock:
                if self._stopping.is_set():
                    return None
                self._waits.add(wake)
            try:
                answer = run_check(command, copy, clock=self.clock, timeout=self.timeout, wake=wake)
            finally:
                with self._lock:
                    self._waits.discard(wake)
            if answer is None:
                return None
            if not answer.passed:
                return Verdict.BAD, f"{result.vm}: {answer.reason}" if several else answer.reason
            passed.append(answer.reason)
        reasons = list(dict.fromkeys(passed))
        return Verdict.GOOD, "; ".join(reasons)

    # --- stopping and cleaning up -----------------------------------------------------------------

    def _stop_trials(self) -> None:
        """Stop every trial at its next step (cancel, an error, an interrupt)."""
        self._stopping.set()
        with self._lock:
            executions = list(self._executions.values())
            waits = list(self._waits)
            wakeup, self._wakeup = self._wakeup, None
        for execution in executions:
            execution.abandon()
        for wake in waits:
            wake.set()
        if wakeup is not None:
            wakeup.set()

    def _drain(self) -> None:
        """Wait (bounded) for stopped trials to remove their copies."""
        deadline = self.clock.monotonic() + TRIAL_ALLOWANCE
        while True:
            with self._lock:
                if not self._in_flight:
                    return
            left = deadline - self.clock.monotonic()
            if left <= 0:
                with self._lock:
                    self._cleanup_errors.append(
                        f"{self._in_flight} trials did not stop within {TRIAL_ALLOWANCE:g} s; "
                        "their test copies may remain"
                    )
                return
            self._take_finished(min(left, 60.0))

    def _remove(self, copies: list[str]) -> tuple[str, ...]:
        removed: list[str] = []
        for copy in copies:
            try:
                self._runner._call(self.backend.remove_test_copy, copy)
                removed.append(copy)
            except VMFailoverError as error:
                with self._lock:
                    self._cleanup_errors.append(f"test copy {copy!r}: {error}")
        with self._lock:
            self._removed.extend(removed)
        return tuple(removed)

    def _prove(self, before: Inventory) -> CleanupResult:
        """Compare the inventory now with the inventory before the search."""
        errors = list(self._cleanup_errors)
        try:
            after = self._runner._call(self.backend.inventory)
            differences = inventory_differences(before, after)
        except VMFailoverError as error:
            differences = []
            errors.append(f"the inventory could not be read to prove the cleanup: {error}")
        return CleanupResult(
            at=self.clock.now(),
            removed=tuple(self._removed),
            restored=not differences and not errors,
            differences=tuple(differences),
            errors=tuple(errors),
        )


# --- arguments ------------------------------------------------------------------------------------


def _groups(vms: object) -> list[tuple[str, ...]]:
    """VMs searched on their own, and groups searched together, each VM once."""
    items: list[object] = [vms] if isinstance(vms, str) else _listed(vms, "vms")
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        members = [item] if isinstance(item, str) else _listed(item, f"vms[{position}]")
        if not members:
            raise ValidationError.of(f"vms[{position}]", "is an empty group")
        for member in members:
            if not isinstance(member, str) or not member.strip():
                raise ValidationError.of(
                    f"vms[{position}]", f"a VM must be a name or id, got {member!r}"
                )
            if member in seen:
                raise ValidationError.of(f"VM {member!r}", "is listed twice")
            seen.add(member)
        groups.append(tuple(members))  # type: ignore[arg-type]
    if not groups:
        raise ValidationError.of("vms", "no VMs given")
    return groups


def _listed(value: object, item: str) -> list[object]:
    if isinstance(value, Mapping | bytes) or not isinstance(value, Iterable):
        raise ValidationError.of(
            item, f"must be a VM name, a list of VMs or a list of groups, got {value!r}"
        )
    return list(value)


def _since(value: object) -> Callable[[datetime], datetime] | None:
    """When the candidates start, as a function of the search's now."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = aware_utc(value, "since")
        return lambda now: moment
    if isinstance(value, timedelta):
        value = value.total_seconds()
    span = parse_seconds(value, "since")
    return lambda now: now - timedelta(seconds=span)


def _network(value: object) -> Callable[[Inventory, list[str]], NetworkMapping] | None:
    """The test network mapping, as a function of the inventory (a single name maps every
    network the searched VMs use)."""
    if value is None:
        return None
    if isinstance(value, NetworkMapping):
        return lambda inventory, vms: value
    if isinstance(value, Mapping):
        mapping = NetworkMapping(test=value)
        return lambda inventory, vms: mapping
    if isinstance(value, str) and value.strip():

        def every_network(inventory: Inventory, vms: list[str]) -> NetworkMapping:
            used = {nic.network for vm in vms for nic in inventory.vm(vm).nics}
            return NetworkMapping(test=dict.fromkeys(sorted(used), value))

        return every_network
    raise ValidationError.of(
        "network",
        f"must be a NetworkMapping, a mapping of network to test network, or a test network "
        f"name, got {value!r}",
    )


def _touched(groups: list[_Group], inventory: Inventory) -> list[str]:
    """The sources, replicas and replica VMs the search claims."""
    ids: list[str] = []
    for group in groups:
        for vm in group.vms:
            replica = inventory.replica_of(vm)
            ids += [replica.source_vm, replica.id, replica.replica_vm]
    return ids
