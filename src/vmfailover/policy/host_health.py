"""When is a host failed? The sans-IO decision behind host failure detection.

A management plane that stops hearing from a host cannot tell a dead host from a broken
management link: in both cases the host is "not responding". Restarting the VMs of a host that
still runs them starts each VM twice (two copies writing one disk). So a host is declared failed
only when it has been silent for a grace period and, when a witness is configured (a datastore
heartbeat, a second network, another vantage point), only when the witness agrees it is down. A
host the witness still sees running is *partitioned*: its VMs run, nothing restarts them, unless
the cluster's isolation response (``power_off``, ``shutdown``) makes the host stop them itself:
then the VMs the witness sees powered off may restart elsewhere, and only those
(:func:`~vmfailover.policy.isolation.isolation_restarts`; the decision's event is
``vms_stopped``).

:class:`HostHealth` is the decision, written sans-IO like h11: the driver
(:class:`vmfailover.engine.host_monitor.HostMonitor`) polls the inventory on a clock, asks the
witness when :meth:`HostHealth.needs_witness` says so, and hands each host's
:class:`HostObservation` to :meth:`HostHealth.observe`, which classifies it into a
:class:`HealthEvent` and moves the host along :data:`TRANSITIONS` (state -> event -> next state;
an event missing from the table raises :class:`~vmfailover.errors.ConflictError` naming the event,
the host and its state). Each change is answered with a :class:`HostDecision` that carries its
evidence and a sentence saying why.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import (
    ConnectionState,
    PowerState,
    as_enum,
    as_instance,
    as_items,
    as_name,
    aware_utc,
    check_flag,
    is_finite_number,
)
from vmfailover.policy.cluster import IsolationResponse
from vmfailover.policy.isolation import IsolationVerdict, isolation_restarts, vm_power_table

__all__ = [
    "TRANSITIONS",
    "HealthEvent",
    "HostDecision",
    "HostHealth",
    "HostObservation",
    "HostState",
    "WitnessVerdict",
]


class HostState(enum.StrEnum):
    """Where a host is, as far as failover is concerned."""

    HEALTHY = "healthy"
    SUSPECT = "suspect"
    FAILED = "failed"
    PARTITIONED = "partitioned"
    REMOVED = "removed"


class HealthEvent(enum.StrEnum):
    """What one observation of a host amounts to."""

    ANSWERED = "answered"
    """The management plane reaches the host."""
    SILENT = "silent"
    """It does not, for less than the grace period."""
    CONFIRMED_DOWN = "confirmed_down"
    """Silent for the grace period, and the witness agrees it is down (or there is no witness)."""
    SEEN_ALIVE = "seen_alive"
    """Silent for the grace period, but the witness sees it running."""
    UNCONFIRMED = "unconfirmed"
    """Silent for the grace period, and the witness cannot tell."""
    REMOVED = "removed"
    """The host left the inventory."""
    VMS_STOPPED = "vms_stopped"
    """Silent for the grace period, the witness sees it running, and sees VMs it last ran
    powered off by the isolation response (``power_off``/``shutdown``): those may restart."""


class WitnessVerdict(enum.StrEnum):
    """What the witness says of a silent host; ``none`` when no witness is configured."""

    ALIVE = "alive"
    DOWN = "down"
    UNKNOWN = "unknown"
    NONE = "none"


_ANSWER_OR_GONE: Final = {
    HealthEvent.ANSWERED: HostState.HEALTHY,
    HealthEvent.REMOVED: HostState.REMOVED,
}

#: The host's life: state -> event -> next state. Anything missing is illegal.
TRANSITIONS: Final[Mapping[HostState, Mapping[HealthEvent, HostState]]] = {
    HostState.HEALTHY: {
        **_ANSWER_OR_GONE,
        HealthEvent.SILENT: HostState.SUSPECT,
        # With a grace period of 0 the first silent poll is already past it.
        HealthEvent.CONFIRMED_DOWN: HostState.FAILED,
        HealthEvent.SEEN_ALIVE: HostState.PARTITIONED,
        HealthEvent.VMS_STOPPED: HostState.PARTITIONED,
        HealthEvent.UNCONFIRMED: HostState.SUSPECT,
    },
    HostState.SUSPECT: {
        **_ANSWER_OR_GONE,
        HealthEvent.SILENT: HostState.SUSPECT,
        HealthEvent.CONFIRMED_DOWN: HostState.FAILED,
        HealthEvent.SEEN_ALIVE: HostState.PARTITIONED,
        HealthEvent.VMS_STOPPED: HostState.PARTITIONED,
        HealthEvent.UNCONFIRMED: HostState.SUSPECT,
    },
    HostState.PARTITIONED: {
        **_ANSWER_OR_GONE,
        HealthEvent.CONFIRMED_DOWN: HostState.FAILED,
        HealthEvent.SEEN_ALIVE: HostState.PARTITIONED,
        HealthEvent.VMS_STOPPED: HostState.PARTITIONED,
        HealthEvent.UNCONFIRMED: HostState.PARTITIONED,
    },
    HostState.FAILED: {
        **_ANSWER_OR_GONE,
        HealthEvent.CONFIRMED_DOWN: HostState.FAILED,
        HealthEvent.SEEN_ALIVE: HostState.FAILED,
        HealthEvent.UNCONFIRMED: HostState.FAILED,
    },
    HostState.REMOVED: {
        **_ANSWER_OR_GONE,
        HealthEvent.SILENT: HostState.SUSPECT,
        HealthEvent.CONFIRMED_DOWN: HostState.FAILED,
        HealthEvent.SEEN_ALIVE: HostState.PARTITIONED,
        HealthEvent.VMS_STOPPED: HostState.PARTITIONED,
        HealthEvent.UNCONFIRMED: HostState.SUSPECT,
    },
}


def transition(host: str, state: HostState, event: HealthEvent) -> HostState:
    """The state after ``event``; ConflictError naming event, host and state if it is illegal."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise ConflictError(
            f"host {host!r} cannot be {event.value} while it is {state.value}"
        ) from None


def _observed_host(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError.of("HostObservation host", f"must be a host name, got {value!r}")


def _observed_text(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError.of(
            f"HostObservation {attribute.name}", f"must be text, got {value!r}"
        )


def _observed_at(value: datetime) -> datetime:
    return aware_utc(value, "HostObservation at")


def _monotonic(value: object, item: str) -> None:
    if not is_finite_number(value):
        raise ValidationError.of(item, f"must be a finite number of seconds, got {value!r}")


def _observed_seconds(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    _monotonic(value, "HostObservation monotonic")


def _observed_connection(value: ConnectionState | str | None) -> ConnectionState | None:
    return None if value is None else as_enum(ConnectionState, value, "HostObservation connection")


def _observed_power(value: PowerState | str | None) -> PowerState | None:
    return None if value is None else as_enum(PowerState, value, "HostObservation power")


def _verdict(value: WitnessVerdict | str) -> WitnessVerdict:
    return as_enum(WitnessVerdict, value, "HostObservation witness")


def _running_vms(value: Iterable[str] | str) -> tuple[str, ...]:
    return as_items(value, str, "HostObservation running_vms", "a VM name")


def _lost_vms(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    return None if value is None else as_items(value, str, "HostObservation lost_vms", "a VM id")


def _vm_power(value: object) -> tuple[tuple[str, PowerState], ...] | None:
    return None if value is None else vm_power_table(value, "HostObservation vm_power")


@attrs.frozen
class HostObservation:
    """One look at one host: what the inventory said, and the witness if it was asked.

    ``present`` is False when the host is not in the inventory. ``running_vms`` names the VMs the
    inventory shows powered on on the host. ``lost_vms`` are the ids of the VMs last seen running
    on it, for a host that does not answer (None when the observer never saw it answer, so
    cannot tell): what a host failover should restart. ``vm_power`` is what the witness sees of
    the host's VMs (VM id -> power state, as sorted pairs; a mapping is accepted), None when it
    was not asked or cannot tell: the evidence an isolation response acts on. ``monotonic`` is
    the driver's clock in seconds (only differences matter); ``at`` is the same instant for the
    record.
    """

    host: str = attrs.field(validator=_observed_host)
    at: datetime = attrs.field(converter=_observed_at)
    monotonic: float = attrs.field(validator=_observed_seconds)
    present: bool = attrs.field(default=True, validator=check_flag)
    connection: ConnectionState | None = attrs.field(
        default=ConnectionState.CONNECTED, converter=_observed_connection
    )
    power: PowerState | None = attrs.field(default=PowerState.ON, converter=_observed_power)
    witness: WitnessVerdict = attrs.field(default=WitnessVerdict.NONE, converter=_verdict)
    witness_detail: str = attrs.field(default="", validator=_observed_text)
    running_vms: tuple[str, ...] = attrs.field(default=(), converter=_running_vms)
    lost_vms: tuple[str, ...] | None = attrs.field(default=(), converter=_lost_vms)
    vm_power: tuple[tuple[str, PowerState], ...] | None = attrs.field(
        default=None, converter=_vm_power
    )

    @property
    def answered(self) -> bool:
        return self.present and self.connection is ConnectionState.CONNECTED


@attrs.frozen
class HostDecision:
    """A recorded decision about a host: the event, the states before and after, the evidence
    (the observation that decided it, and how long the host had been silent) and why.

    ``isolation`` is the isolation response's verdict on a partitioned host's VMs (which may
    restart, which still run), when the response acts and the witness showed their power.
    """

    host: str
    at: datetime
    event: HealthEvent
    previous: HostState
    state: HostState
    evidence: HostObservation
    silent_for: float
    grace: float
    reason: str
    isolation: IsolationVerdict | None = None

    @property
    def declared_failed(self) -> bool:
        """This decision declares the host failed (it was not before)."""
        return self.state is HostState.FAILED and self.previous is not HostState.FAILED

    @property
    def restart_vms(self) -> tuple[str, ...] | None:
        """The ids of the VMs this decision lets restart elsewhere: the VMs last seen running
        on a host declared failed (None: every VM registered there, when it was never seen
        answering), the VMs its isolation response stopped, or none."""
        if self.declared_failed:
            return self.evidence.lost_vms
        if self.event is HealthEvent.VMS_STOPPED and self.isolation is not None:
            return self.isolation.restart
        return ()

    def __str__(self) -> str:
        change = f"{self.previous} -> {self.state}"
        return f"{self.at.isoformat()} host {self.host!r} {change}: {self.reason}"


@attrs.define
class _Tracked:
    state: HostState = HostState.HEALTHY
    silent_since: float | None = None
    last_event: HealthEvent | None = None
    released: frozenset[str] = frozenset()  # VMs the isolation response let restart


def _grace(value: object) -> float:
    if not is_finite_number(value):
        raise ValidationError.of("grace", f"must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValidationError.of("grace", f"must be >= 0 seconds, got {value!r}")
    return float(value)


class HostHealth:
    """The failure decision for every host of a cluster; see the module docstring.

    Pure and deterministic: the same observations give the same decisions. A host seen for the
    first time starts ``healthy``. ``isolation_response`` is the cluster's
    (:attr:`~vmfailover.policy.cluster.ClusterPolicy.isolation_response`): with ``power_off`` or
    ``shutdown``, a partitioned host's VMs that the witness sees powered off are released for
    restart, each once per partition (``vms_stopped``); with ``leave_powered_on`` (the default)
    none ever is.
    """

    def __init__(
        self,
        grace: float,
        isolation_response: IsolationResponse | str = IsolationResponse.LEAVE_POWERED_ON,
    ) -> None:
        self.grace = _grace(grace)
        self.isolation_response = as_enum(
            IsolationResponse, isolation_response, "HostHealth isolation_response"
        )
        self._hosts: dict[str, _Tracked] = {}

    def state(self, host: str) -> HostState:
        """The host's state (``healthy`` if never observed)."""
        tracked = self._hosts.get(as_name(host, "state"))
        return HostState.HEALTHY if tracked is None else tracked.state

    @property
    def states(self) -> dict[str, HostState]:
        """Every observed host and its state."""
        return {host: tracked.state for host, tracked in self._hosts.items()}

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host observed so far, removed ones included."""
        return tuple(self._hosts)

    def silent_for(self, host: str, monotonic: float) -> float:
        """Seconds since the first unanswered observation of the host (0 if it answers)."""
        tracked = self._hosts.get(as_name(host, "silent_for"))
        _monotonic(monotonic, "silent_for monotonic")
        if tracked is None or tracked.silent_since is None:
            return 0.0
        return max(0.0, monotonic - tracked.silent_since)

    def needs_witness(self, host: str, monotonic: float) -> bool:
        """Whether an unanswered observation of ``host`` at ``monotonic`` would be past the grace
        period, so that the witness's verdict decides it."""
        tracked = self._hosts.get(as_name(host, "needs_witness"))
        _monotonic(monotonic, "needs_witness monotonic")
        if tracked is None or tracked.silent_since is None:
            return self.grace == 0
        return monotonic - tracked.silent_since >= self.grace

    @property
    def isolation_acts(self) -> bool:
        """The isolation response stops VMs, so a partitioned host's VM power is evidence."""
        return self.isolation_response is not IsolationResponse.LEAVE_POWERED_ON

    def isolation(self, observation: HostObservation) -> IsolationVerdict | None:
        """The isolation response's verdict on the observed host's VMs not yet released (None
        when the response does not act, the observation has no VM power or the VMs last seen
        running are unknown); no state changes."""
        observation = as_instance(observation, HostObservation, "isolation")
        lost = observation.lost_vms
        if not self.isolation_acts or observation.vm_power is None or lost is None:
            return None
        tracked = self._hosts.get(observation.host)
        released = frozenset() if tracked is None else tracked.released
        pending = [vm for vm in lost if vm not in released]
        return isolation_restarts(self.isolation_response, pending, dict(observation.vm_power))

    def classify(self, observation: HostObservation) -> HealthEvent:
        """What the observation amounts to (no state changes)."""
        observation = as_instance(observation, HostObservation, "classify")
        if not observation.present:
            return HealthEvent.REMOVED
        if observation.answered:
            return HealthEvent.ANSWERED
        if not self.needs_witness(observation.host, observation.monotonic):
            return HealthEvent.SILENT
        event = {
            WitnessVerdict.NONE: HealthEvent.CONFIRMED_DOWN,
            WitnessVerdict.DOWN: HealthEvent.CONFIRMED_DOWN,
            WitnessVerdict.ALIVE: HealthEvent.SEEN_ALIVE,
            WitnessVerdict.UNKNOWN: HealthEvent.UNCONFIRMED,
        }[observation.witness]
        if event is HealthEvent.SEEN_ALIVE and self.state(observation.host) is not HostState.FAILED:
            verdict = self.isolation(observation)
            if verdict is not None and verdict.restart:
                return HealthEvent.VMS_STOPPED
        return event

    def observe(self, observation: HostObservation) -> HostDecision | None:
        """Move the host on this observation; the decision if something changed, else None.

        A decision is recorded when the state changes or when the same state is reached by a
        different event (for example a suspect host whose grace has run out but whose witness
        cannot tell), so repeated identical observations record nothing.
        """
        observation = as_instance(observation, HostObservation, "observe")
        host = observation.host
        tracked = self._hosts.setdefault(host, _Tracked())
        event = self.classify(observation)
        previous = tracked.state
        judged = event is HealthEvent.VMS_STOPPED or (
            event is HealthEvent.SEEN_ALIVE and previous is not HostState.FAILED
        )
        verdict = self.isolation(observation) if judged else None
        silent_for = self.silent_for(host, observation.monotonic)
        tracked.state = transition(host, previous, event)
        if event in (HealthEvent.ANSWERED, HealthEvent.REMOVED):
            tracked.silent_since = None
            tracked.released = frozenset()  # a new partition judges its VMs afresh
        elif tracked.silent_since is None:
            tracked.silent_since = observation.monotonic
        if event is HealthEvent.VMS_STOPPED and verdict is not None:
            tracked.released |= frozenset(verdict.restart)
            # Later looks that find nothing new to release are no news.
            tracked.last_event = HealthEvent.SEEN_ALIVE
            reason = _isolation_reason(verdict, observation, silent_for, self.grace)
        else:
            if tracked.state is previous and tracked.last_event is event:
                return None
            tracked.last_event = event
            if previous is HostState.HEALTHY and event is HealthEvent.ANSWERED:
                return None  # a healthy host that answers is no news
            reason = _reason(event, previous, observation, silent_for, self.grace, verdict)
        return HostDecision(
            host=host,
            at=observation.at,
            event=event,
            previous=previous,
            state=tracked.state,
            evidence=observation,
            silent_for=silent_for,
            grace=self.grace,
            reason=reason,
            isolation=verdict,
        )


def _isolation_reason(
    verdict: IsolationVerdict, observation: HostObservation, silent_for: float, grace: float
) -> str:
    who = observation.witness_detail or "the witness"
    said = (
        f"silent for {silent_for:.10g} s (grace {grace:.10g} s), {who} sees it running: "
        f"isolated; its isolation response {verdict.response.value} stopped "
        f"{', '.join(verdict.restart)}, which may restart elsewhere"
    )
    if verdict.running:
        said += f"; still running, never restarted: {', '.join(verdict.running)}"
    if verdict.unseen:
        said += f"; not seen by {who}, not restarted: {', '.join(verdict.unseen)}"
    return said


def _reason(
    event: HealthEvent,
    previous: HostState,
    observation: HostObservation,
    silent_for: float,
    grace: float,
    verdict: IsolationVerdict | None = None,
) -> str:
    who = observation.witness_detail or "the witness"
    silent = f"silent for {silent_for:.10g} s (grace {grace:.10g} s)"
    state = "not in the inventory" if observation.connection is None else observation.connection
    if event is HealthEvent.ANSWERED:
        if previous is HostState.FAILED:
            return "answers again: it is back; VMs restarted elsewhere stay where they are"
        if previous is HostState.REMOVED:
            return "is back in the inventory and answers"
        return f"answers again after {silent_for:.10g} s"
    if event is HealthEvent.SILENT:
        return f"does not answer ({state}); waiting for the grace period of {grace:.10g} s"
    if event is HealthEvent.CONFIRMED_DOWN:
        if observation.witness is WitnessVerdict.NONE:
            return f"{silent}, no witness configured: declared failed"
        return f"{silent}, and {who} sees it down too: declared failed"
    if event is HealthEvent.SEEN_ALIVE:
        if previous is HostState.FAILED:
            return f"{who} sees it running again; it stays failed until it answers"
        said = (
            f"{silent}, but {who} sees it running: a management partition, its VMs still run; "
            "nothing is restarted"
        )
        if verdict is not None and (verdict.running or verdict.unseen):
            said += f" (isolation response {verdict.response.value}: "
            if verdict.running:
                said += f"still running: {', '.join(verdict.running)}"
            if verdict.unseen:
                said += "; " if verdict.running else ""
                said += f"not seen by {who}: {', '.join(verdict.unseen)}"
            said += ")"
        return said
    if event is HealthEvent.UNCONFIRMED:
        return f"{silent}, but {who}: not declared failed on the management network's word alone"
    return "left the inventory: no longer watched"
