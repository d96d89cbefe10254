"""Failover plans: construction refuses bad values; the pre-flight finds every problem, naming its
item, and reads only; compiling resolves each VM's work."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from vmfailover import (
    VM,
    GuestOS,
    IPConfig,
    NetworkMapping,
    Nic,
    PowerState,
    ReIPOverride,
    ReIPRule,
    ReIPRules,
    StartOrder,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.errors import Finding, ValidationError
from vmfailover.model import FailoverKind
from vmfailover.plan import (
    Approval,
    FailoverPlan,
    PowerOffSource,
    Step,
    StepFailure,
    StepScope,
    gather,
    resolve,
)
from vmfailover.testing import LAB_DEPENDENCIES, LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, lab

READS = {"inventory", "recovery_points", "recovery_point_limit", "readiness"}
ALL = tuple(LAB_DEPENDENCIES)


def lab_order() -> StartOrder:
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


def lab_plan(**overrides: object) -> FailoverPlan:
    settings: dict[str, object] = {
        "name": "three-tier",
        "vms": ALL,
        "order": lab_order(),
        "network": NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
    }
    settings.update(overrides)
    return FailoverPlan(**settings)  # type: ignore[arg-type]


def errors(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if f.blocking]


def warnings(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if not f.blocking]


def only_reads(backend: MemoryBackend) -> bool:
    """Whether every backend call since :func:`fresh_lab` only read."""
    calls = set(backend.faults.per_operation)
    assert calls, "the check made no backend call at all"
    return calls <= READS


def fresh_lab() -> MemoryBackend:
    """The lab, with its call log cleared after it was built."""
    backend = lab()
    backend.faults.per_operation.clear()
    return backend


# --- construction ------------------------------------------------------------------------------


def test_a_plan_is_plain_data_that_compares_by_value() -> None:
    first, second = lab_plan(), lab_plan()
    assert first == second
    assert first != lab_plan(rpo="15m")
    assert first.rpo is None
    assert lab_plan(rpo="15m").rpo == 900.0
    assert lab_plan(rto="1h30m").rto == 5400.0


def test_the_plan_keeps_its_own_copy_of_the_order() -> None:
    order = lab_order()
    plan = lab_plan(order=order)
    order.limit("host", 2)
    assert "host" not in plan.order.limits  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value", "item"),
    [
        ("name", "", "FailoverPlan name"),
        ("vms", [], "FailoverPlan vms"),
        ("vms", "dc01", None),
        ("vms", ["dc01", "dc01"], "VM 'dc01'"),
        ("vms", ["dc01", 7], "vms[1]"),
        ("vms", {"dc01": 1}, "FailoverPlan vms"),
        ("rpo", math.nan, "FailoverPlan rpo"),
        ("rpo", math.inf, "FailoverPlan rpo"),
        ("rpo", -5, "FailoverPlan rpo"),
        ("rto", "fast", "FailoverPlan rto"),
        ("rto", True, "FailoverPlan rto"),
        ("power_off_source", "sometimes", "power_off_source"),
        ("recovery_point", "newest", "recovery_point"),
        ("recovery_point", datetime(2026, 1, 1), "recovery_point"),
        ("recovery_point", {"nobody": "latest"}, "recovery_point for VM 'nobody'"),
        ("network", {"Prod-App": "DR-App"}, "FailoverPlan network"),
        ("reip", [ReIPRule("10.0.0.*", "10.1.0.*")], "FailoverPlan reip"),
        ("order", ["dc01"], "FailoverPlan order"),
        ("steps", "make coffee", "FailoverPlan steps"),
        ("shutdown_timeout", 0, "FailoverPlan shutdown_timeout"),
        ("description", 3, "FailoverPlan description"),
    ],
)
def test_bad_values_are_refused_where_they_enter(field: str, value: object, item: str) -> None:
    if field == "vms" and value == "dc01":
        assert lab_plan(vms=value, order=None).vms == ("dc01",)  # one name is a list of one
        return
    with pytest.raises(ValidationError) as caught:
        lab_plan(**{field: value})
    if item is not None:
        assert any(f.item == item for f in caught.value.findings), caught.value.findings


def test_the_order_may_only_name_plan_vms_and_steps_only_plan_vms() -> None:
    with pytest.raises(ValidationError, match="start order VM 'web01'"):
        lab_plan(vms=("dc01", "db01"))
    with pytest.raises(ValidationError, match=r"step 'check'.*'ghost'"):
        lab_plan(steps=[Step("check", ["true"], vm="ghost")])


def test_kind_defaults() -> None:
    plan = lab_plan()
    assert plan.power_off("planned") is PowerOffSource.GRACEFUL
    assert plan.power_off("regular") is PowerOffSource.NEVER
    assert lab_plan(power_off_source="graceful").power_off("test") is PowerOffSource.NEVER
    assert plan.point_choice("dc01") == "latest"
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    mixed = lab_plan(recovery_point={"db01": moment})
    assert mixed.point_choice("db01") == moment
    assert mixed.point_choice("dc01") == "latest"
    with pytest.raises(ValidationError, match="kind"):
        plan.power_off("sideways")


# --- steps and approvals -----------------------------------------------------------------------


def test_steps_are_argv_or_callables_never_shell_text() -> None:
    assert Step("dns", ["update-dns", "--zone", "corp"]).command == ("update-dns", "--zone", "corp")
    assert Step("call", print).command is None
    with pytest.raises(ValidationError, match="never shell text"):
        Step("dns", "update-dns --zone corp; rm -rf /")
    with pytest.raises(ValidationError, match="argv"):
        Step("dns", [])
    with pytest.raises(ValidationError, match="argv"):
        Step("dns", ["ok", 3])


def test_step_scope_failure_policy_and_kinds() -> None:
    assert Step("a", ["true"]).scope is StepScope.PLAN
    assert Step("a", ["true"], group=2).scope is StepScope.GROUP
    assert Step("a", ["true"], vm="db01", on_failure="fail_vm").scope is StepScope.VM
    with pytest.raises(ValidationError, match="needs a VM step"):
        Step("a", ["true"], on_failure=StepFailure.FAIL_VM)
    with pytest.raises(ValidationError, match="both a VM and a group"):
        Step("a", ["true"], vm="db01", group=1)
    for bad in (math.nan, math.inf, 0, -1, "10"):
        with pytest.raises(ValidationError, match="timeout"):
            Step("a", ["true"], timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="step kinds"):
        Step("a", ["true"], kinds=["drill"])
    smoke = Step("smoke", ["true"], kinds="test")
    plan = lab_plan(steps=[smoke, Approval("go", kinds=["planned", "regular"])])
    assert plan.steps_for("test") == (smoke,)
    assert [s.name for s in plan.steps_for("planned")] == ["go"]
    with pytest.raises(ValidationError, match="twice"):
        lab_plan(steps=[smoke, smoke])
    with pytest.raises(ValidationError, match="approver"):
        Approval("go", approver="yes")  # type: ignore[arg-type]


# --- the pre-flight ----------------------------------------------------------------------------


def test_a_good_plan_passes_every_kind_where_it_should_and_reads_only() -> None:
    backend = fresh_lab()
    plan = lab_plan()
    assert errors(plan.validate(backend, "test")) == []
    assert errors(plan.validate(backend, "planned")) == []
    # The source site is up and running: a regular failover would split the brain.
    regular = errors(plan.validate(backend, "regular"))
    assert len(regular) == len(ALL)
    assert all("which answers" in text for text in regular)
    assert only_reads(backend)
    backend.fail_site("site-a")
    assert errors(plan.validate(backend, "regular")) == []
    assert only_reads(backend)


def test_unknown_vms_duplicates_and_missing_replicas_are_named() -> None:
    backend = lab()
    backend.add_vm(VM("vm-900", "lonely", "esx-a1", power_state=PowerState.ON))
    backend.faults.per_operation.clear()
    plan = FailoverPlan("p", ["dc01", "vm-001", "ghost", "lonely"])
    found = errors(plan.validate(backend, "test"))
    assert any(t.startswith("VM 'vm-001': names the same VM (vm-001) as 'dc01'") for t in found)
    assert any(t.startswith("VM 'ghost': no VM with id or name 'ghost'") for t in found)
    assert any(t.startswith("VM 'lonely': VM 'lonely' has no replica") for t in found)
    assert only_reads(backend)


def test_point_choice_that_nothing_satisfies_and_stale_points() -> None:
    backend = lab()
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    plan = lab_plan(recovery_point={"db01": long_ago, "db02": "latest-application-consistent"})
    found = errors(plan.validate(backend, "test"))
    assert any("VM 'db01': no recovery point" in t and "2000-01-01" in t for t in found)
    assert any("VM 'db02': no recovery point" in t for t in found)
    stale = warnings(lab_plan(rpo="10m").validate(backend, "test"))
    assert any("VM 'dc01': its recovery point is 20m00s old" in t for t in stale)
    assert not any("RPO" in t for t in warnings(lab_plan(rpo="1h").validate(backend, "test")))
    # A planned failover takes a final sync: no point choice, no staleness.
    assert errors(plan.validate(backend, "planned")) == []


def test_network_findings_name_vm_and_nic() -> None:
    backend = lab()
    unmapped = lab_plan(network=NetworkMapping(production={"Prod-App": "DR-App"}))
    found = errors(unmapped.validate(backend, "planned"))
    assert any("VM 'web01' NIC 00:50:56:0a:00:08" in t and "Prod-Web" in t for t in found)
    onto_production = lab_plan(
        network=NetworkMapping(
            production=LAB_NETWORK_MAP, test={"Prod-App": "DR-App", "Prod-Web": "Test-Web"}
        )
    )
    found = errors(onto_production.validate(backend, "test"))
    assert any("VM 'dc01' NIC" in t and "not isolated" in t for t in found)
    assert not any("VM 'web01'" in t for t in found)
    no_mapping = lab_plan(network=None)
    found = errors(no_mapping.validate(backend, "test"))
    assert any("VM 'dc01' NIC" in t and "'DR-App', which is not isolated" in t for t in found)
    assert errors(no_mapping.validate(backend, "planned")) == []
    missing = lab_plan(network=NetworkMapping(production={**LAB_NETWORK_MAP, "Prod-App": "Nope"}))
    found = errors(missing.validate(backend, "planned"))
    assert any("'Nope', which does not exist at site 'site-b'" in t for t in found)


def test_reip_collisions_unmatched_addresses_and_uncustomizable_guests() -> None:
    backend = lab()
    collide = lab_plan(
        reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")]),
        reip_overrides=[ReIPOverride("db01", "00:50:56:0a:00:03", ip_configs=["10.20.0.22/24"])],
    )
    found = errors(collide.validate(backend, "planned"))
    assert any("10.20.0.22" in t and "VM 'db0" in t for t in found), found
    partial = lab_plan(reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")]))
    kept = warnings(partial.validate(backend, "planned"))
    assert any("VM 'web01'" in t and "no re-IP rule matches" in t for t in kept), kept
    # An address already held at the target site by a VM outside the plan.
    backend.add_vm(
        VM(
            "vm-950",
            "squatter",
            "esx-b1",
            power_state=PowerState.ON,
            nics=(Nic("00:50:56:ff:00:01", "DR-App", (IPConfig("10.20.0.21/24"),)),),
        )
    )
    taken = errors(partial.validate(backend, "planned"))
    assert any("VM 'db01'" in t and "10.20.0.21" in t and "squatter" in t for t in taken), taken
    # Tests run isolated: production addresses at the target site do not collide with them.
    isolated = lab_plan(test_reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")]))
    assert not any("squatter" in t for t in errors(isolated.validate(backend, "test")))
    # A guest that cannot be customized cannot be re-addressed.
    other = lab()
    odd = VM(
        "vm-960",
        "appliance",
        "esx-a1",
        power_state=PowerState.ON,
        guest_os=GuestOS.OTHER,
        nics=(Nic("00:50:56:ff:00:02", "Prod-App", (IPConfig("192.168.20.99/24"),)),),
    )
    other.add_vm(odd)
    other.sync(other.create_replica("vm-960", "esx-b1", "ds-b1", network_map=LAB_NETWORK_MAP).id)
    plan = FailoverPlan(
        "odd",
        ["appliance"],
        network=NetworkMapping(production=LAB_NETWORK_MAP),
        reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")]),
    )
    assert any("cannot be customized" in t for t in errors(plan.validate(other, "planned")))


def test_overrides_apply_to_production_kinds() -> None:
    backend = lab()
    plan = lab_plan(
        reip_overrides=[ReIPOverride("db01", "00:50:56:0a:00:03", ip_configs=["10.9.9.9/24"])]
    )
    facts = gather(plan, backend)
    planned = resolve(plan, facts, "planned")
    db01 = next(vm for vm in planned.vms if vm.name == "db01")
    assert [str(a) for a in db01.expected_addresses] == ["10.9.9.9"]
    test = resolve(plan, facts, "test")
    assert next(vm for vm in test.vms if vm.name == "db01").expected_addresses == ()


def test_order_problems_and_unknown_groups() -> None:
    backend = lab()
    order = StartOrder()
    order.add("dc01", after=["db01"])
    order.add("db01", after=["dc01"])
    plan = FailoverPlan(
        "cycle",
        ["dc01", "db01", "web01"],
        order=order,
        network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        steps=[Step("warm-up", ["true"], group=3)],
    )
    findings = plan.validate(backend, "test")
    assert any("cycle" in t for t in errors(findings))
    assert any("step 'warm-up': names group 3" in t for t in errors(findings))
    assert any("'web01'" in t and "no dependencies" in t for t in warnings(findings))


def test_capacity_of_target_hosts() -> None:
    backend = MemoryBackend()
    backend.add_site("a")
    backend.add_site("b")
    backend.add_network("n", "a")
    backend.add_network("n", "b")
    backend.add_datastore("ds-a", "a")
    backend.add_datastore("ds-b", "b")
    backend.add_host("ha", "a", cpu_cores=64, memory_mb=65_536)
    backend.add_host("hb", "b", cpu_cores=2, memory_mb=8192)
    for index in range(3):
        vm = VM(
            f"v{index}",
            f"vm{index}",
            "ha",
            nics=(Nic(f"00:00:00:00:00:0{index}", "n"),),
            cpu=4 if index == 0 else 1,
            memory_mb=4096,
        )
        backend.add_vm(vm)
        backend.sync(backend.create_replica(vm.id, "hb", "ds-b").id)
    plan = FailoverPlan("tight", ["vm0", "vm1", "vm2"])
    found = errors(plan.validate(backend, "planned"))
    assert any(t.startswith("host 'hb': needs 12288 MB") for t in found), found
    assert any(t.startswith("VM 'vm0': has 4 vCPUs, more than the 2 cores") for t in found)


def test_fencing_per_kind_and_force() -> None:
    backend = lab()
    plan = lab_plan()
    # Planned: the source site must answer.
    backend.isolate_host("esx-a1")
    found = errors(plan.validate(backend, "planned"))
    assert any("VM 'dc01': a planned failover needs the source" in t for t in found)
    # Regular with the source site cut off but running: refused, unless forced.
    found = errors(plan.validate(backend, "regular"))
    assert any("VM 'dc01': the source was last seen running on 'esx-a1'" in t for t in found)
    facts = gather(plan, backend)
    forced = resolve(plan, facts, "regular", force=True)
    assert not [f for f in forced.findings if f.blocking]
    assert any(d.startswith("VM 'dc01':") and "force=True" in d for d in forced.decisions)
    assert next(v for v in forced.vms if v.name == "dc01").accepted_risk
    # Regular with graceful power-off: the run may shut reachable sources down itself.
    graceful = lab_plan(power_off_source="graceful")
    found = errors(graceful.validate(backend, "regular"))
    assert not any("VM 'web03'" in t for t in found)  # on esx-a3, which answers
    assert any("VM 'dc01'" in t for t in found)  # on esx-a1, which does not
    # Planned with power-off forbidden and the source running.
    never = lab_plan(power_off_source="never")
    assert any("power_off_source is 'never'" in t for t in errors(never.validate(lab(), "planned")))
    with pytest.raises(ValidationError, match="force"):
        resolve(plan, facts, "regular", force="yes")  # type: ignore[arg-type]


def test_replica_states_each_kind_needs() -> None:
    backend = lab()
    inventory = backend.inventory()
    replica = inventory.replica_of("db01")
    point = backend.recovery_points(replica.id)[-1]
    backend.create_test_copy(replica.id, point.id, "t1")
    found = errors(lab_plan().validate(backend, "test"))
    assert any("VM 'db01': its replica" in t and "test failover" in t for t in found)


def test_planned_failover_needs_room_for_the_final_sync() -> None:
    backend = lab(recovery_point_limit=4)  # the lab holds 4 points per replica
    found = errors(lab_plan().validate(backend, "planned"))
    assert any("the final sync has no room" in t for t in found)
    assert errors(lab_plan().validate(backend, "test")) == []


# --- compiling ---------------------------------------------------------------------------------


def test_compile_resolves_points_networks_and_addresses() -> None:
    backend = lab()
    backend.fail_site("site-a")
    plan = lab_plan(
        reip=ReIPRules(
            [ReIPRule("192.168.20.*", "10.20.0.*"), ReIPRule("192.168.10.*", "10.10.0.*")]
        )
    )
    inventory = backend.inventory()
    points = {r.id: backend.recovery_points(r.id) for r in inventory.replicas}
    compiled = plan.compile(inventory, "regular", points=points, now=backend.clock.now())
    assert compiled.kind is FailoverKind.REGULAR
    assert [vm.name for vm in compiled] == list(ALL)
    db01 = compiled.vm("db01")
    assert db01.point == points[db01.replica.id][-1]
    assert [str(a) for a in db01.expected_addresses] == ["10.20.0.21"]
    assert db01.nics[0].network is None  # the replica already sits on DR-App
    assert db01.entry.after == ("dc01",)
    test = plan.compile(inventory, "test", points=points, now=backend.clock.now())
    assert test.vm("db01").nics[0].network == "Test-App"
    assert test.vm("db01").expected_addresses == ()  # no test re-IP rules
    assert "db01" in str(compiled) and "10.20.0.21" in compiled._repr_html_()
    planned = lab_plan()
    with pytest.raises(ValidationError, match="planned failover needs the source"):
        planned.compile(inventory, "planned", points=points, now=backend.clock.now())


def test_compile_refuses_what_is_not_facts() -> None:
    backend = lab()
    inventory = backend.inventory()
    now = backend.clock.now()
    with pytest.raises(ValidationError, match="points"):
        lab_plan().compile(inventory, "test", points=[1, 2], now=now)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="now"):
        lab_plan().compile(inventory, "test", points={}, now=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="kind"):
        lab_plan().compile(inventory, "drill", points={}, now=now)
    compiled_unknown_points = lab_plan()
    with pytest.raises(ValidationError, match="are unknown"):
        compiled_unknown_points.compile(inventory, "test", points={}, now=now)


def test_validate_uses_the_backends_clock() -> None:
    backend = lab()
    plan = lab_plan(rpo="30m")
    assert not warnings(plan.validate(backend, "test"))
    backend.clock.advance(timedelta(minutes=15).total_seconds())
    assert any("RPO" in t for t in warnings(plan.validate(backend, "test")))


@pytest.mark.parametrize("points", [None, 5, [None], "abc"])
def test_points_that_are_not_recovery_points_are_refused_by_the_replica(points: object) -> None:
    """Found by the bad-input harness: a replica's points given as None raised TypeError."""
    from vmfailover.plan.check import Facts

    with pytest.raises(ValidationError, match="points of replica 'r1': must all be RecoveryPoint"):
        Facts.of(lab().inventory(), {"r1": points}, now=datetime.now(UTC))  # type: ignore[dict-item]
