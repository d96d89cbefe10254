"""The plan-file format, written down once: one small attrs class per kind of table in a file.

A plan file is a contract of its own. It is versioned (``format_version``), it must stay readable
when the Python API moves, and its reference page and JSON Schema are generated from it. So the
format is not the attrs classes of the API: it is these *document* classes, whose fields are
exactly the keys a file may hold, typed with the file's own types (durations such as ``"15m"``,
addresses as text, probes tagged with ``type``). Every field carries its description in
``metadata["doc"]``; the schema (:mod:`vmfailover.plan.schema`) and the reference page are made
from that.

The value types below (``Seconds``, ``PositiveInt`` ...) are :class:`typing.NewType` markers: the
converter (:mod:`vmfailover.plan.convert`) checks each where the value enters, so an error names
the key (``order.vms[2].timeout``), not the object built from it.
"""

# No ``from __future__ import annotations``: the converter reads these annotations at run time.

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NewType, TypeAlias, cast

import attrs

from vmfailover.model import FailoverKind
from vmfailover.plan.plan import FailoverPlan, PowerOffSource
from vmfailover.plan.steps import Approval, Step, StepFailure, When
from vmfailover.policy.probes import DEFAULT_PROBE_TIMEOUT
from vmfailover.policy.sequencer import FailurePolicy, GroupMode

__all__ = [
    "FORMAT_VERSION",
    "ApprovalDocument",
    "CalendarSpan",
    "HTTPCode",
    "HTTPStatusProbe",
    "IPAssignedProbe",
    "IPConfigDocument",
    "NetworkDocument",
    "OrderDocument",
    "OrderVMDocument",
    "OverrideDocument",
    "PlanDocument",
    "Port",
    "PositiveInt",
    "PoweredOnProbe",
    "PrefixLength",
    "ProbeDocument",
    "RetentionCount",
    "RetentionDocument",
    "RuleDocument",
    "Seconds",
    "StepDocument",
    "TCPPortProbe",
    "Text",
    "Timestamp",
    "ToolsHeartbeatProbe",
]

#: The format this version of vmfailover reads and writes.
FORMAT_VERSION = 1

# Value types of the file. For the type checker they are their base types (a Text is a str);
# at run time they are distinct markers the converter hooks its checks onto:
#   Text: text that is not empty (nor only spaces): names, addresses, patterns.
#   PositiveInt: a whole number >= 1. RetentionCount: -1 (all), 0 (off) or a positive number.
#   Port: a TCP port, 1-65535. HTTPCode: an HTTP status code, 100-599.
#   PrefixLength: 0-128 (0-32 for IPv4: the rule checks its own version).
#   Seconds: a duration > 0, seconds as a number or text such as "90s", "15m", "1h30m".
#   Timestamp: a moment with a time zone, a TOML date-time or ISO 8601 text.
#   CalendarSpan: years, months, days and hours such as "7d" or "1y6m".
if TYPE_CHECKING:
    Text: TypeAlias = str
    PositiveInt: TypeAlias = int
    RetentionCount: TypeAlias = int
    Port: TypeAlias = int
    HTTPCode: TypeAlias = int
    PrefixLength: TypeAlias = int
    Seconds: TypeAlias = float
    Timestamp: TypeAlias = datetime
    CalendarSpan: TypeAlias = str
else:
    Text = NewType("Text", str)
    PositiveInt = NewType("PositiveInt", int)
    RetentionCount = NewType("RetentionCount", int)
    Port = NewType("Port", int)
    HTTPCode = NewType("HTTPCode", int)
    PrefixLength = NewType("PrefixLength", int)
    Seconds = NewType("Seconds", float)
    Timestamp = NewType("Timestamp", datetime)
    CalendarSpan = NewType("CalendarSpan", str)

# The API's defaults, so a file and the API never disagree about what leaving a key out means.
_STEP_TIMEOUT = cast(float, attrs.fields(Step).timeout.default)
_APPROVAL_TIMEOUT = cast(float, attrs.fields(Approval).timeout.default)
_SHUTDOWN_TIMEOUT = cast(float, attrs.fields(FailoverPlan).shutdown_timeout.default)

PointWord = Literal["latest", "latest-application-consistent"]


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


def described(doc: str, **kwargs: Any) -> Any:
    """An attrs field whose description (``metadata['doc']``) the schema and reference show."""
    return attrs.field(metadata=_doc(doc), **kwargs)


# --- readiness probes ---------------------------------------------------------------------------

_PROBE_TIMEOUT = "How long the runner waits for the check to pass (default 10m)."


@attrs.frozen
class PoweredOnProbe:
    """Ready as soon as the hypervisor reports the VM powered on."""

    timeout: Seconds = described(_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)


@attrs.frozen
class ToolsHeartbeatProbe:
    """Ready when the guest tools (VMware Tools, Hyper-V integration services) send a heartbeat."""

    timeout: Seconds = described(_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)


@attrs.frozen
class IPAssignedProbe:
    """Ready when the guest reports an IP address (after re-IP, the expected one)."""

    timeout: Seconds = described(_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)


@attrs.frozen
class TCPPortProbe:
    """Ready when a TCP connection to ``port`` succeeds."""

    port: Port = described("The TCP port to connect to.")
    address: Text | None = described(
        "Host name or address to connect to; left out: the address the guest reports.",
        default=None,
    )
    timeout: Seconds = described(_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)


@attrs.frozen
class HTTPStatusProbe:
    """Ready when a GET of ``url`` answers with ``status``."""

    url: Text = described("The URL to GET; it starts with http:// or https://.")
    status: HTTPCode = described("The HTTP status that means ready.", default=200)
    timeout: Seconds = described(_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)


ProbeDocument = (
    PoweredOnProbe | ToolsHeartbeatProbe | IPAssignedProbe | TCPPortProbe | HTTPStatusProbe
)

#: The ``type`` of each probe table.
PROBE_TAGS: dict[type, str] = {
    PoweredOnProbe: "powered_on",
    ToolsHeartbeatProbe: "tools_heartbeat",
    IPAssignedProbe: "ip_assigned",
    TCPPortProbe: "tcp_port",
    HTTPStatusProbe: "http_status",
}


# --- the start order ----------------------------------------------------------------------------


@attrs.frozen
class OrderVMDocument:
    """One VM of the start order: what it waits for, its group, probe, timeout and limits."""

    name: Text = described("The VM (one of the plan's `vms`).")
    after: tuple[Text, ...] = described(
        "VMs that must be ready before this one starts (each one of the plan's `vms`).", default=()
    )
    group: PositiveInt | None = described(
        "Priority group (1 starts first); left out: after every numbered group.", default=None
    )
    probe: ProbeDocument | None = described(
        "How to tell the VM is ready; left out: ready when powered on.", default=None
    )
    timeout: Seconds | None = described(
        "Longest time from start to ready; left out: no limit beyond the probe's.", default=None
    )
    on_failure: FailurePolicy = described(
        "What this VM's failure does to the rest of the run.",
        default=FailurePolicy.SKIP_DEPENDENTS,
    )
    resources: tuple[Text, ...] = described(
        "Limited resources (see `order.limits`) the start holds one unit of until ready.",
        default=(),
    )


@attrs.frozen
class OrderDocument:
    """The start order: dependencies, groups, limits and probes."""

    max_parallel: PositiveInt | None = described(
        "How many VMs start at once at most; left out: no overall limit.", default=None
    )
    groups: GroupMode = described(
        "`priority`: groups only order the queue; `barrier`: group N+1 waits for group N.",
        default=GroupMode.PRIORITY,
    )
    limits: dict[Text, PositiveInt] = described(
        "Resource name -> how many starting VMs may hold it at once.", factory=dict
    )
    vms: tuple[OrderVMDocument, ...] = described(
        "The VMs with something to say about their start; plan VMs left out start with no "
        "dependencies.",
        default=(),
    )


# --- networks and addresses ---------------------------------------------------------------------


@attrs.frozen
class NetworkDocument:
    """Which recovery-site network each source network's NICs join."""

    production: dict[Text, Text] = described(
        "Source network -> target network, for planned and regular failovers.", factory=dict
    )
    test: dict[Text, Text] = described(
        "Source network -> isolated target network, for test failovers.", factory=dict
    )
    same_name: bool = described(
        "Map a network with no entry to the target network of the same name.", default=False
    )
    allow_non_isolated_test: bool = described(
        "Let a test failover use a network that is not isolated (a warning instead of an "
        "error); for labs only.",
        default=False,
    )


@attrs.frozen
class RuleDocument:
    """A re-IP rule: addresses matching `source` get the same free octets (or host bits) in
    `target`."""

    source: Text = described("Source pattern: `192.168.1.*`, `192.168.1.0/24`, `2001:db8:1::*`.")
    target: Text = described("Target pattern of the same shape as `source`.")
    prefix: PrefixLength | None = described(
        "Prefix length of every result; left out: the source address's own.", default=None
    )
    mask: Text | None = described(
        "IPv4 netmask instead of `prefix`, e.g. `255.255.255.0`.", default=None
    )
    gateway: Text | None = described(
        "Default gateway of the results; must lie in their subnet.", default=None
    )
    dns: tuple[Text, ...] = described("DNS servers of the results.", default=())
    dns_suffixes: tuple[Text, ...] = described("DNS search suffixes of the results.", default=())
    description: str = described("Free text for people.", default="")


@attrs.frozen
class IPConfigDocument:
    """A static address with its gateway and DNS settings."""

    address: Text = described("Address with prefix length, e.g. `10.0.0.5/24`.")
    gateway: Text | None = described("Default gateway, inside the address's subnet.", default=None)
    dns: tuple[Text, ...] = described("DNS servers.", default=())
    dns_suffixes: tuple[Text, ...] = described("DNS search suffixes.", default=())


@attrs.frozen
class OverrideDocument:
    """An explicit configuration for one NIC of one VM, winning over every re-IP rule."""

    vm: Text = described("The VM's name or id.")
    mac: Text = described("The NIC's MAC address, e.g. `00:50:56:0a:00:01`.")
    ip_configs: tuple[IPConfigDocument, ...] = described(
        "Static addresses of the NIC (or set `dhcp`).", default=()
    )
    dhcp: bool = described("Move the NIC to DHCP instead.", default=False)


# --- steps and approvals ------------------------------------------------------------------------

_WHEN = "Run `before` the scope starts or `after` it has finished."
_VM = "The plan VM this surrounds; give `vm`, `group` or neither (the whole plan)."
_GROUP = "The priority group this surrounds."
_KINDS = "Failover kinds this applies to (`test`, `planned`, `regular`); left out: all."


@attrs.frozen
class StepDocument:
    """A command run before or after the plan, a group or a VM."""

    name: Text = described("The step's name, unique in the plan.")
    command: tuple[str, ...] = described(
        "The argv list; never shell text, so arguments stay arguments."
    )
    when: When = described(_WHEN, default=When.BEFORE)
    vm: Text | None = described(_VM, default=None)
    group: PositiveInt | None = described(_GROUP, default=None)
    timeout: Seconds = described(
        "Longest the command may run (default 10m).", default=_STEP_TIMEOUT
    )
    on_failure: StepFailure = described(
        "`abort` the run, `fail_vm` (VM steps only) or `continue` with a warning.",
        default=StepFailure.ABORT,
    )
    kinds: tuple[FailoverKind, ...] | None = described(_KINDS, default=None)


@attrs.frozen
class ApprovalDocument:
    """A gate: the run pauses until someone approves (or the timeout cancels it)."""

    name: Text = described("The gate's name, unique in the plan.")
    when: When = described(_WHEN, default=When.BEFORE)
    vm: Text | None = described(_VM, default=None)
    group: PositiveInt | None = described(_GROUP, default=None)
    timeout: Seconds = described(
        "How long the gate waits; unanswered, it cancels the run (default 1d).",
        default=_APPROVAL_TIMEOUT,
    )
    kinds: tuple[FailoverKind, ...] | None = described(_KINDS, default=None)


StepItem = StepDocument | ApprovalDocument

#: The ``type`` of each entry of ``steps``.
STEP_TAGS: dict[type, str] = {StepDocument: "step", ApprovalDocument: "approval"}

RecoveryPointDocument = PointWord | Timestamp | dict[Text, PointWord | Timestamp]


# --- the plan -----------------------------------------------------------------------------------


@attrs.frozen
class PlanDocument:
    """A failover plan: which VMs, from which recovery point, mapped and re-addressed how,
    started in which order, with which steps around them."""

    name: Text = described("The plan's name.")
    vms: tuple[Text, ...] = described("The source VMs (names or ids), each once.")
    format_version: int = described(
        f"The plan-file format; this vmfailover reads and writes {FORMAT_VERSION}.",
        default=FORMAT_VERSION,
    )
    description: str = described("Free text for people.", default="")
    recovery_point: RecoveryPointDocument = described(
        "`latest`, `latest-application-consistent`, a date-time (the newest point at or before "
        "it), or a table of VM -> one of those (VMs left out use `latest`).",
        default="latest",
    )
    power_off_source: PowerOffSource | None = described(
        "What happens to a source VM before its replica starts; left out: the kind's default "
        "(`graceful` for planned, `never` otherwise).",
        default=None,
    )
    shutdown_timeout: Seconds = described(
        "How long a graceful shutdown of a source may take (default 5m).",
        default=_SHUTDOWN_TIMEOUT,
    )
    rpo: Seconds | None = described("Recovery point objective.", default=None)
    rto: Seconds | None = described("Recovery time objective.", default=None)
    auto_commit: Seconds | None = described(
        "Commit a planned or regular failover this long after its recovery ended, unless "
        "someone decided first (Zerto's commit policy); at most one of `auto_commit`, "
        "`auto_undo`.",
        default=None,
    )
    auto_undo: Seconds | None = described(
        "Undo a planned or regular failover this long after its recovery ended, unless "
        "someone decided first.",
        default=None,
    )
    order: OrderDocument | None = described(
        "The start order; left out: every VM starts at once.", default=None
    )
    network: NetworkDocument | None = described(
        "Network mapping; left out: NICs stay where replication put them.", default=None
    )
    reip: tuple[RuleDocument, ...] | None = described(
        "Re-IP rules for planned and regular failovers; left out: no re-addressing.",
        default=None,
    )
    test_reip: tuple[RuleDocument, ...] | None = described(
        "Re-IP rules for test failovers; left out: no re-addressing.", default=None
    )
    reip_overrides: tuple[OverrideDocument, ...] = described(
        "Per-NIC exceptions to `reip`.", default=()
    )
    steps: tuple[StepItem, ...] = described(
        "Commands and approval gates around the plan, groups and VMs, in order; each has "
        '`type = "step"` (the default) or `type = "approval"`.',
        default=(),
    )


# --- retention ----------------------------------------------------------------------------------

_COUNT = "-1 (all), 0 (off) or how many"


@attrs.frozen
class RetentionDocument:
    """Which recovery points a replica keeps: restic's `forget` rules, plus pins."""

    last: RetentionCount = described(f"{_COUNT} newest points to keep.", default=0)
    hourly: RetentionCount = described(f"{_COUNT} hours to keep the newest point of.", default=0)
    daily: RetentionCount = described(f"{_COUNT} days to keep the newest point of.", default=0)
    weekly: RetentionCount = described(f"{_COUNT} weeks to keep the newest point of.", default=0)
    monthly: RetentionCount = described(f"{_COUNT} months to keep the newest point of.", default=0)
    yearly: RetentionCount = described(f"{_COUNT} years to keep the newest point of.", default=0)
    within: CalendarSpan | None = described(
        "Keep every point within this span of the newest.", default=None
    )
    within_hourly: CalendarSpan | None = described(
        "Keep the newest point of each hour within this span.", default=None
    )
    within_daily: CalendarSpan | None = described(
        "Keep the newest point of each day within this span.", default=None
    )
    within_weekly: CalendarSpan | None = described(
        "Keep the newest point of each week within this span.", default=None
    )
    within_monthly: CalendarSpan | None = described(
        "Keep the newest point of each month within this span.", default=None
    )
    within_yearly: CalendarSpan | None = described(
        "Keep the newest point of each year within this span.", default=None
    )
    tags: tuple[tuple[Text, ...], ...] = described(
        "Tag lists; a point carrying every tag of one list is kept.", default=()
    )
    tz: Text = described("IANA time zone of the calendar buckets.", default="UTC")
