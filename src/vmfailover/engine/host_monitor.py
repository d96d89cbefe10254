"""Host failure detection: poll the inventory on a clock and decide which hosts have failed.

:class:`HostMonitor` is the thin driver around the sans-IO decision in
:mod:`vmfailover.policy.host_health`: every ``interval`` seconds of its clock it reads
``backend.inventory()``, asks the witness about hosts silent for longer than ``grace``, feeds the
observations to the decision and records every decision with its evidence (the VMs last seen
running on a silent host among it). A host declared failed calls ``on_failure``: a
:class:`~vmfailover.engine.host_failover.HostFailoverResponse` there restarts its VMs on the
other hosts of the cluster (``runner.host_failover``).

A host the witness still sees running is partitioned, and nothing restarts its VMs, unless the
cluster's isolation response (``power_off``, ``shutdown``) makes the host stop them itself: then
the monitor asks the witness which of the host's VMs it sees powered off (a witness with
``vm_power_states``, see :class:`VMPowerWitness`) and a ``vms_stopped`` decision calls
``on_failure`` for exactly those; VMs still seen running are named and never restarted. A
witness without ``vm_power_states`` gives no such evidence, so nothing restarts (as before).

Where the hypervisor's own HA restarts VMs (vSphere HA, Hyper-V failover clustering), the
monitor observes instead of competing (``mode="observe"``: ``on_failure`` is never called): it
notices when the VMs of a lost host run again, on another host or on the same one once it is
back, and records how long each was down (:class:`RestartObservation`). A VM seen running again
on its own host counts as restarted only if the host was declared failed meanwhile (otherwise it
kept running through a blip or a partition). It records restarts in ``respond`` mode too.

Every wait is bounded: the sleeps between polls by ``interval``, :meth:`HostMonitor.run` by its
duration, :meth:`HostMonitor.stop` by its timeout, and each call to the backend or the witness by
``call_timeout`` (seconds of real time: a call that hangs is abandoned and counts as "no answer";
a second call is not started while the first still hangs). A callback that raises is recorded in
:attr:`HostMonitor.callback_errors` and changes nothing else.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

import attrs

from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, SystemClock
from vmfailover.errors import BackendError, ValidationError, VMFailoverError
from vmfailover.model import ConnectionState, Host, Inventory, PowerState, is_finite_number
from vmfailover.policy.cluster import Cluster, ClusterPolicy, IsolationResponse
from vmfailover.policy.host_health import (
    HostDecision,
    HostHealth,
    HostObservation,
    HostState,
    WitnessVerdict,
)
from vmfailover.policy.isolation import vm_power_table

__all__ = [
    "BackendWitness",
    "HostMonitor",
    "MonitorMode",
    "MonitorNote",
    "RestartObservation",
    "VMPowerWitness",
    "Witness",
]

Witness = Callable[[str], bool | None]
"""Asked about a silent host by name: True if it sees the host running, False if it sees it down
(or cannot reach it either), None if it cannot tell.

A witness may also be a :class:`VMPowerWitness`: then it is the evidence an isolation response
(``power_off``, ``shutdown``) acts on."""


@runtime_checkable
class VMPowerWitness(Protocol):
    """A :data:`Witness` that also sees the power of a host's VMs (datastore heartbeating, the
    host's own inventory through a second path), so that the VMs an isolated host has stopped
    can restart elsewhere.

    ``vm_power_states(host)`` maps the ids of the VMs registered on the host (the ids the
    monitored backend uses) to their power state (a :class:`~vmfailover.model.PowerState` or
    its value), or returns None when it cannot tell. A VM it leaves out is not restarted.
    """

    def __call__(self, host: str) -> bool | None: ...

    def vm_power_states(self, host: str) -> Mapping[str, PowerState | str] | None: ...


_T = TypeVar("_T")


class MonitorMode(enum.StrEnum):
    """``respond``: a declared failure calls ``on_failure``. ``observe``: the hypervisor's own HA
    restarts VMs; the monitor only records decisions and restarts."""

    RESPOND = "respond"
    OBSERVE = "observe"


@attrs.frozen
class RestartObservation:
    """A VM of a lost host, and when it ran again (``to_host`` and ``back_at`` are None when it
    did not within ``restart_timeout``).

    ``downtime`` runs from the last poll that saw the VM running to the first that saw it running
    again: an upper bound, accurate to one poll interval.
    """

    vm: str
    name: str
    from_host: str
    last_seen_at: datetime
    to_host: str | None
    back_at: datetime | None

    @property
    def restarted(self) -> bool:
        return self.back_at is not None

    @property
    def downtime(self) -> float | None:
        """Seconds the VM was down, or None if it is not back."""
        if self.back_at is None:
            return None
        return (self.back_at - self.last_seen_at).total_seconds()

    def __str__(self) -> str:
        if self.back_at is None or self.to_host is None:
            return f"VM {self.name!r} of {self.from_host!r} did not run again"
        where = "the same host" if self.to_host == self.from_host else repr(self.to_host)
        return (
            f"VM {self.name!r} of {self.from_host!r} runs again on {where} "
            f"after {self.downtime:.10g} s"
        )


@attrs.frozen
class MonitorNote:
    """Something the monitor could not judge (no inventory, a witness that hung) and why."""

    at: datetime
    message: str


@attrs.define
class _Outage:
    vm: str
    name: str
    from_host: str
    last_seen_at: datetime
    missing_since: float
    host_failed: bool = False


class BackendWitness:
    """A second vantage point: another connection to the same hosts (a second management
    network, a direct connection to the hosts, a vCenter in another site).

    It sees a host alive when its own inventory shows it connected, down when it cannot reach
    the host either, and cannot tell when its inventory fails or does not know the host. It is a
    :class:`VMPowerWitness`: when it reaches the host, its inventory shows the power of the
    host's VMs (by id: the second path must name VMs as the monitored backend does).
    """

    def __init__(self, backend: Backend) -> None:
        if not callable(getattr(backend, "inventory", None)):
            raise ValidationError.of("BackendWitness backend", f"has no inventory(): {backend!r}")
        self.backend = backend

    def __call__(self, host: str) -> bool | None:
        try:
            inventory = self.backend.inventory()
        except VMFailoverError:
            return None
        for candidate in inventory.hosts:
            if candidate.name == host:
                return candidate.connection is ConnectionState.CONNECTED
        return None

    def vm_power_states(self, host: str) -> dict[str, PowerState] | None:
        """The power state of each VM on ``host``, if this vantage point reaches the host."""
        try:
            inventory = self.backend.inventory()
        except VMFailoverError:
            return None
        reached = any(
            candidate.name == host and candidate.connection is ConnectionState.CONNECTED
            for candidate in inventory.hosts
        )
        if not reached:
            return None
        return {vm.id: vm.power_state for vm in inventory.vms if vm.host == host}

    def __repr__(self) -> str:
        return f"BackendWitness({getattr(self.backend, 'name', self.backend)!r})"


def _witness_name(witness: Witness) -> str:
    name = getattr(witness, "__name__", None)
    if isinstance(name, str) and name != "<lambda>":
        return f"witness {name!r}"
    return "the witness" if name == "<lambda>" else f"witness {witness!r}"


def _seconds(value: object, field: str, *, zero: bool = False) -> float:
    if not is_finite_number(value):
        raise ValidationError.of(
            f"HostMonitor {field}", f"must be a finite number of seconds, got {value!r}"
        )
    if value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValidationError.of(f"HostMonitor {field}", f"must be {bound} seconds, got {value!r}")
    return float(value)


class _Bounded:
    """Runs one kind of call at a time on a helper thread and waits at most ``timeout`` seconds."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self._busy: threading.Thread | None = None

    def __call__(self, call: Callable[[], _T]) -> _T:
        if self._busy is not None and self._busy.is_alive():
            raise TimeoutError(f"the previous {self.what} call has not returned yet")
        box: list[_T] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                box.append(call())
            except BaseException as error:  # handed back to the caller below
                errors.append(error)

        thread = threading.Thread(target=work, name=f"host-monitor-{self.what}", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self._busy = thread
            raise TimeoutError(f"the {self.what} call did not return within {self.timeout:g} s")
        if errors:
            raise errors[0]
        return box[0]


class HostMonitor:
    """Watches the hosts of a backend and decides which have failed; see the module docstring.

    ``hosts`` limits the watch to some hosts (names, or a :class:`~vmfailover.Cluster`); by
    default every host of the inventory is watched. ``witness`` is a :data:`Witness` callable or
    a :class:`BackendWitness`. ``clock`` defaults to the backend's clock (the memory backend's
    virtual clock), else real time. ``isolation_response`` is the cluster's (default: the
    policy of ``on_failure`` when it has one, as a
    :class:`~vmfailover.engine.host_failover.HostFailoverResponse` does, else
    ``leave_powered_on``).
    """

    def __init__(
        self,
        backend: Backend,
        interval: float = 10.0,
        grace: float = 30.0,
        witness: Witness | None = None,
        *,
        hosts: Iterable[str] | Cluster | None = None,
        clock: Clock | None = None,
        mode: MonitorMode | str = MonitorMode.RESPOND,
        on_failure: Callable[[HostDecision], None] | None = None,
        on_decision: Callable[[HostDecision], None] | None = None,
        on_restart: Callable[[RestartObservation], None] | None = None,
        call_timeout: float = 30.0,
        restart_timeout: float = 600.0,
        isolation_response: IsolationResponse | str | None = None,
    ) -> None:
        if not callable(getattr(backend, "inventory", None)):
            raise ValidationError.of("HostMonitor backend", f"has no inventory(): {backend!r}")
        for field, value in (
            ("witness", witness),
            ("on_failure", on_failure),
            ("on_decision", on_decision),
            ("on_restart", on_restart),
        ):
            if value is not None and not callable(value):
                raise ValidationError.of(
                    f"HostMonitor {field}", f"must be callable or None, got {value!r}"
                )
        try:
            self.mode = MonitorMode(mode)
        except ValueError:
            raise ValidationError.of(
                "HostMonitor mode", f"must be 'respond' or 'observe', got {mode!r}"
            ) from None
        self.backend = backend
        self.interval = _seconds(interval, "interval")
        if isolation_response is None:
            policy = getattr(on_failure, "policy", None)
            isolation_response = (
                policy.isolation_response
                if isinstance(policy, ClusterPolicy)
                else IsolationResponse.LEAVE_POWERED_ON
            )
        self.health = HostHealth(_seconds(grace, "grace", zero=True), isolation_response)
        self.witness = witness
        self.clock: Clock = clock or getattr(backend, "clock", None) or SystemClock()
        self.on_failure = on_failure
        self.on_decision = on_decision
        self.on_restart = on_restart
        self.restart_timeout = _seconds(restart_timeout, "restart_timeout")
        timeout = _seconds(call_timeout, "call_timeout")
        self._inventory_call = _Bounded("inventory", timeout)
        self._witness_call = _Bounded("witness", timeout)
        self._vm_power_call = _Bounded("witness vm_power_states", timeout)
        self._watched = self._watch_list(hosts)
        self._lock = threading.Lock()  # guards the records below, held briefly
        self._polling = threading.Lock()  # one poll at a time
        self._decisions: list[HostDecision] = []
        self._restarts: list[RestartObservation] = []
        self._notes: list[MonitorNote] = []
        self._callback_errors: list[str] = []
        self._last_running: dict[str, tuple[str, str, datetime]] = {}
        self._answered: set[str] = set()  # hosts seen answering at least once
        self._outages: dict[str, _Outage] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _watch_list(hosts: Iterable[str] | Cluster | None) -> frozenset[str] | None:
        if hosts is None:
            return None
        names = hosts.hosts if isinstance(hosts, Cluster) else hosts
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ValidationError.of(
                "HostMonitor hosts", f"must be host names or a Cluster, got {hosts!r}"
            )
        watched = frozenset(names)
        if not watched or not all(isinstance(name, str) and name for name in watched):
            raise ValidationError.of(
                "HostMonitor hosts", f"must name at least one host, got {hosts!r}"
            )
        return watched

    def __repr__(self) -> str:
        return (
            f"HostMonitor({getattr(self.backend, 'name', '?')!r}, interval={self.interval:g}, "
            f"grace={self.health.grace:g}, witness={self.witness!r}, mode={self.mode.value!r}, "
            f"isolation_response={self.health.isolation_response.value!r})"
        )

    # --- what it found ---------------------------------------------------------------------------

    @property
    def decisions(self) -> tuple[HostDecision, ...]:
        """Every decision so far, oldest first."""
        with self._lock:
            return tuple(self._decisions)

    @property
    def restarts(self) -> tuple[RestartObservation, ...]:
        """VMs of lost hosts that ran again (or did not within ``restart_timeout``)."""
        with self._lock:
            return tuple(self._restarts)

    @property
    def notes(self) -> tuple[MonitorNote, ...]:
        """Polls the monitor could not judge, and why."""
        with self._lock:
            return tuple(self._notes)

    @property
    def callback_errors(self) -> tuple[str, ...]:
        """Errors raised by callbacks (they change nothing else)."""
        with self._lock:
            return tuple(self._callback_errors)

    def state(self, host: str) -> HostState:
        return self.health.state(host)

    @property
    def states(self) -> dict[str, HostState]:
        return self.health.states

    # --- driving ---------------------------------------------------------------------------------

    def poll(self) -> tuple[HostDecision, ...]:
        """Look once: read the inventory, judge every watched host, track restarts.

        Returns the decisions this poll recorded. When the inventory cannot be read, nothing is
        judged (a management server that is down says nothing about the hosts) and a
        :class:`MonitorNote` says so.
        """
        with self._polling:
            at, monotonic = self.clock.now(), self.clock.monotonic()
            try:
                inventory = self._inventory_call(self.backend.inventory)
            except (BackendError, TimeoutError) as error:
                with self._lock:
                    self._notes.append(MonitorNote(at, f"no inventory, nothing judged: {error}"))
                return ()
            decisions = self._judge(inventory, at, monotonic)
            self._track_restarts(inventory, decisions, at, monotonic)
            return decisions

    def run(self, duration: float) -> tuple[HostDecision, ...]:
        """Poll every ``interval`` for ``duration`` seconds of the monitor's clock (a first poll
        at once, the last at most ``duration`` later); returns the decisions recorded."""
        seconds = _seconds(duration, "run duration", zero=True)
        end = self.clock.monotonic() + seconds
        found: list[HostDecision] = []
        while True:
            found += self.poll()
            remaining = end - self.clock.monotonic()
            if remaining <= 0:
                return tuple(found)
            self.clock.sleep(min(self.interval, remaining))

    def start(self) -> None:
        """Poll in a background thread until :meth:`stop` (for real time; with a virtual clock
        that only moves when advanced, drive :meth:`poll` or :meth:`run` instead)."""
        with self._polling:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="host-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the background polling; waits at most ``timeout`` seconds (default: one interval
        plus the call timeout). True if it has stopped."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        wait = timeout if timeout is not None else self.interval + self._inventory_call.timeout
        thread.join(_seconds(wait, "stop timeout", zero=True))
        return not thread.is_alive()

    def __enter__(self) -> HostMonitor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            # Sleep in slices of at most a second of the clock, so that stop() is heard soon.
            due = self.clock.monotonic() + self.interval
            while not self._stop.is_set() and (left := due - self.clock.monotonic()) > 0:
                self.clock.sleep(min(left, 1.0))

    # --- judging ---------------------------------------------------------------------------------

    def _judge(
        self, inventory: Inventory, at: datetime, monotonic: float
    ) -> tuple[HostDecision, ...]:
        present = {
            host.name: host
            for host in inventory.hosts
            if self._watched is None or host.name in self._watched
        }
        running: dict[str, list[str]] = {}
        for vm in inventory.vms:
            if vm.power_state is PowerState.ON:
                running.setdefault(vm.host, []).append(vm.name)
        names = list(present) + [
            name
            for name in self.health.hosts
            if name not in present and self.health.state(name) is not HostState.REMOVED
        ]
        found: list[HostDecision] = []
        for name in names:
            observation = self._observe(name, present.get(name), running, at, monotonic)
            decision = self.health.observe(observation)
            if decision is None:
                continue
            found.append(decision)
            with self._lock:
                self._decisions.append(decision)
            self._call("on_decision", self.on_decision, decision)
            releases = decision.declared_failed or bool(decision.restart_vms)
            if releases and self.mode is MonitorMode.RESPOND:
                self._call("on_failure", self.on_failure, decision)
        return tuple(found)

    def _observe(
        self,
        name: str,
        host: Host | None,
        running: dict[str, list[str]],
        at: datetime,
        monotonic: float,
    ) -> HostObservation:
        if host is None:
            return HostObservation(name, at, monotonic, present=False, connection=None, power=None)
        verdict, detail = WitnessVerdict.NONE, ""
        answered = host.connection is ConnectionState.CONNECTED
        lost: tuple[str, ...] | None = ()
        if answered:
            self._answered.add(name)
        else:
            lost = self._lost_on(name) if name in self._answered else None
        vm_power: dict[str, PowerState] | None = None
        if not answered and self.witness is not None and self.health.needs_witness(name, monotonic):
            verdict, detail = self._ask_witness(name)
            if verdict is WitnessVerdict.ALIVE and self.health.isolation_acts:
                vm_power = self._ask_vm_power(name)
        return HostObservation(
            host=name,
            at=at,
            monotonic=monotonic,
            connection=host.connection,
            power=host.power,
            witness=verdict,
            witness_detail=detail,
            running_vms=tuple(sorted(running.get(name, ()))),
            lost_vms=lost,
            vm_power=vm_power,
        )

    def _lost_on(self, host: str) -> tuple[str, ...]:
        """The ids of the VMs last seen running on ``host``."""
        return tuple(
            sorted(vm_id for vm_id, (_, where, _) in self._last_running.items() if where == host)
        )

    def _ask_witness(self, host: str) -> tuple[WitnessVerdict, str]:
        """The witness's verdict and who said it (or why it could not)."""
        witness = self.witness
        assert witness is not None
        who = _witness_name(witness)
        try:
            answer: object = self._witness_call(lambda: witness(host))
        except TimeoutError as error:
            return WitnessVerdict.UNKNOWN, f"{who} did not answer: {error}"
        except Exception as error:  # a witness is user code: its failure is "cannot tell"
            return WitnessVerdict.UNKNOWN, f"{who} failed: {type(error).__name__}: {error}"
        if answer is True:
            return WitnessVerdict.ALIVE, who
        if answer is False:
            return WitnessVerdict.DOWN, who
        if answer is None:
            return WitnessVerdict.UNKNOWN, f"{who} cannot tell"
        return WitnessVerdict.UNKNOWN, f"{who} answered {answer!r}, not True, False or None"

    def _ask_vm_power(self, host: str) -> dict[str, PowerState] | None:
        """What the witness sees of the host's VMs' power; None when it cannot say (no
        ``vm_power_states``, a hang, a failure or an answer that is no map of power states:
        no evidence, so nothing restarts)."""
        witness = self.witness
        assert witness is not None
        ask = getattr(witness, "vm_power_states", None)
        if not callable(ask):
            return None
        try:
            answer: object = self._vm_power_call(lambda: ask(host))
        except Exception as error:  # a witness is user code: its failure is "cannot tell"
            with self._lock:
                self._notes.append(
                    MonitorNote(
                        self.clock.now(),
                        f"{_witness_name(witness)} could not show the VMs of {host!r}: "
                        f"{type(error).__name__}: {error}",
                    )
                )
            return None
        if answer is None:
            return None
        try:
            return dict(vm_power_table(answer, f"vm_power_states of {host!r}"))
        except ValidationError as error:
            with self._lock:
                self._notes.append(MonitorNote(self.clock.now(), f"ignored: {error}"))
            return None

    def _call(self, what: str, callback: Callable[[_T], object] | None, value: _T) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception as error:  # a subscriber never changes the monitor's course
            with self._lock:
                self._callback_errors.append(f"{what} raised {type(error).__name__}: {error}")

    # --- restarts --------------------------------------------------------------------------------

    def _track_restarts(
        self,
        inventory: Inventory,
        decisions: tuple[HostDecision, ...],
        at: datetime,
        monotonic: float,
    ) -> None:
        available = {host.name for host in inventory.hosts if host.available}
        running_now = {
            vm.id: vm
            for vm in inventory.vms
            if vm.power_state is PowerState.ON and vm.host in available
        }
        lost = (HostState.SUSPECT, HostState.PARTITIONED, HostState.FAILED)
        for decision in decisions:
            if decision.previous is HostState.HEALTHY and decision.state in lost:
                for vm_id, (name, host, seen) in self._last_running.items():
                    if host == decision.host and vm_id not in self._outages:
                        self._outages[vm_id] = _Outage(vm_id, name, host, seen, monotonic)
            if decision.declared_failed:
                for outage in self._outages.values():
                    if outage.from_host == decision.host:
                        outage.host_failed = True
        for vm_id, outage in list(self._outages.items()):
            vm = running_now.get(vm_id)
            if vm is not None:
                del self._outages[vm_id]
                if vm.host != outage.from_host or outage.host_failed:
                    self._record_restart(outage, vm.host, at)
                # else: it kept running through a blip or a partition; no restart to report
            elif monotonic - outage.missing_since >= self.restart_timeout:
                del self._outages[vm_id]
                self._record_restart(outage, None, None)
        for vm_id, vm in running_now.items():
            self._last_running[vm_id] = (vm.name, vm.host, at)
        for vm_id in [v for v, (_, host, _) in self._last_running.items() if host in available]:
            if vm_id not in running_now:
                del self._last_running[vm_id]  # powered off on a host that answers: not lost

    def _record_restart(self, outage: _Outage, host: str | None, at: datetime | None) -> None:
        observed = RestartObservation(
            vm=outage.vm,
            name=outage.name,
            from_host=outage.from_host,
            last_seen_at=outage.last_seen_at,
            to_host=host,
            back_at=at,
        )
        with self._lock:
            self._restarts.append(observed)
        self._call("on_restart", self.on_restart, observed)
