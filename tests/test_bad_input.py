"""Bad input never escapes as a raw exception (issue 11).

One test per item the issue found, then a hypothesis harness driven by the signatures of every
public name of ``vmfailover`` and ``vmfailover.testing``: each call succeeds or raises one of our
errors, never anything else, and never hangs.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bad_values
from vmfailover import (
    FailoverPlan,
    Runner,
    RunResult,
    StartOrder,
    VirtualClock,
)
from vmfailover.engine.events import RunEvent, StepStarted, VMStep
from vmfailover.engine.runner import RetryPolicy
from vmfailover.errors import ConflictError, ValidationError, VMFailoverError
from vmfailover.testing import LAB_DEPENDENCIES, LAB_NETWORK_MAP, lab

NAN = float("nan")
INF = float("inf")


def lab_plan(vms: tuple[str, ...] = tuple(LAB_DEPENDENCIES), **overrides: object) -> FailoverPlan:
    from vmfailover import NetworkMapping

    settings: dict[str, object] = {
        "name": "bad-input",
        "vms": vms,
        "network": NetworkMapping(production=LAB_NETWORK_MAP),
    }
    settings.update(overrides)
    return FailoverPlan(**settings)  # type: ignore[arg-type]


def quick_runner(backend: object, **kwargs: object) -> Runner:
    kwargs.setdefault("poll_interval", 5.0)
    kwargs.setdefault("retry", RetryPolicy(attempts=3, initial_wait=0.5, max_wait=2))
    return Runner(backend, **kwargs)  # type: ignore[arg-type]


def refused(call: Callable[[], object], *words: str) -> VMFailoverError:
    """``call`` raises one of our errors whose text names each of ``words``."""
    with pytest.raises(VMFailoverError) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    return caught.value


# --- already handled on main: checked here, one test per item -----------------------------------


def test_a_raising_subscriber_becomes_a_warning_and_the_run_goes_on() -> None:
    backend = lab()
    backend.fail_site("site-a")
    the_runner = quick_runner(backend)

    def explode(event: RunEvent) -> None:
        if isinstance(event, StepStarted) and event.step is VMStep.POWER_ON:
            raise RuntimeError("observer bug")

    the_runner.subscribe(explode)
    report = the_runner.failover(lab_plan(("dc01", "db01")), kind="regular")
    assert report.result is RunResult.SUCCEEDED
    assert all(vm.ready_at is not None for vm in report.vms)
    assert any("RuntimeError" in warning for warning in report.warnings)


def test_a_subscriber_may_unsubscribe_itself_inside_its_callback() -> None:
    backend = lab()
    backend.fail_site("site-a")
    the_runner = quick_runner(backend)
    heard: list[RunEvent] = []

    def once(event: RunEvent) -> None:
        heard.append(event)
        stop()

    stop = the_runner.subscribe(once)
    report = the_runner.failover(lab_plan(("dc01",)), kind="regular")
    assert report.result is RunResult.SUCCEEDED
    assert len(heard) == 1


def test_events_are_delivered_on_a_thread_of_their_own() -> None:
    backend = lab()
    backend.fail_site("site-a")
    the_runner = quick_runner(backend)
    threads: set[str] = set()
    the_runner.subscribe(lambda event: threads.add(threading.current_thread().name))
    the_runner.failover(lab_plan(("dc01",)), kind="regular")
    assert threads == {"vmfailover-events"}


def test_a_second_run_touching_claimed_vms_is_refused_naming_the_holder() -> None:
    from vmfailover import Approval

    backend = lab()
    backend.fail_site("site-a")
    first = quick_runner(backend).start(
        lab_plan(("dc01", "db01"), steps=[Approval("hold")]), kind="regular"
    )
    for _ in range(500):
        if first.waiting_approvals:
            break
        threading.Event().wait(0.02)
    error = refused(
        lambda: quick_runner(backend).failover(lab_plan(("db01",)), kind="regular"), first.id
    )
    assert isinstance(error, ConflictError)
    first.approve("hold")
    first.wait(timeout=60)


@pytest.mark.parametrize("flag", ["no", "False", 0, 1, None])
def test_force_must_be_a_real_boolean(flag: object) -> None:
    the_runner = quick_runner(lab())
    refused(lambda: the_runner.start(lab_plan(), kind="test", force=flag), "force")  # type: ignore[arg-type]


def test_one_vm_named_twice_by_id_and_by_name_is_refused_by_the_plan_check() -> None:
    backend = lab()
    backend.fail_site("site-a")
    vm_id = backend.inventory().vm("dc01").id
    findings = quick_runner(backend).validate(lab_plan((vm_id, "dc01")), "regular")
    assert any(f.blocking and "dc01" in str(f) for f in findings), findings
    refused(lambda: quick_runner(backend).failover(lab_plan((vm_id, "dc01")), kind="regular"))


def test_rto_is_met_only_when_every_vm_is_ready_in_time() -> None:
    backend = lab()
    backend.fail_site("site-a")
    backend.set_boot(backend.inventory().replica_of("dc01").replica_vm, boots=False)
    report = quick_runner(backend, readiness_timeout=60).failover(
        lab_plan(("dc01",), rto="15m"), kind="regular"
    )
    assert report.rto_met is False
    assert "MISSED" in str(report)


@pytest.mark.parametrize(("rto", "seconds"), [("15m", 900.0), ("1h30m", 5400.0), (120, 120.0)])
def test_rto_is_parsed_from_a_duration(rto: object, seconds: float) -> None:
    assert lab_plan(rto=rto).rto == seconds


@pytest.mark.parametrize("rto", [-5, 0, NAN, INF, "soon", True])
def test_a_bad_rto_is_refused_naming_it(rto: object) -> None:
    refused(lambda: lab_plan(rto=rto), "rto")


def test_runner_refuses_what_is_not_a_backend() -> None:
    refused(lambda: Runner("memory"), "backend")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2.5, 0, -1, None, True, "8", NAN, 10**400])
def test_max_parallel_must_be_a_positive_whole_number(value: object) -> None:
    refused(lambda: Runner(lab(), max_parallel=value), "max_parallel")  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts", [0, -1, 2.5, None, True, 10**400])
def test_retry_attempts_must_be_positive(attempts: object) -> None:
    refused(lambda: RetryPolicy(attempts=attempts), "attempts")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["readiness_timeout", "poll_interval"])
@pytest.mark.parametrize("value", [NAN, INF, -INF, 10**400, -1, "1", None])
def test_runner_waits_must_be_finite(field: str, value: object) -> None:
    refused(lambda: Runner(lab(), **{field: value}), field)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["initial_wait", "max_wait"])
@pytest.mark.parametrize("value", [NAN, INF, 10**400, -1])
def test_retry_waits_must_be_finite(field: str, value: object) -> None:
    refused(lambda: RetryPolicy(**{field: value}), field)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [NAN, INF, -INF, 1e20, 10**400, -1, "5", None])
def test_the_virtual_clock_refuses_what_it_cannot_advance_by(seconds: object) -> None:
    clock = VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
    refused(lambda: clock.advance(seconds), "advance")  # type: ignore[arg-type]
    assert clock.now() == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("speed", ["nan", "inf", "1e308", "1e-300", "0", "-1"])
def test_demo_speed_is_refused_before_anything_runs(
    speed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from vmfailover.cli import main

    assert main(["demo", "--speed", speed]) == 3
    captured = capsys.readouterr()
    assert "--speed" in captured.err
    assert captured.out == ""  # nothing half-printed
    assert "Traceback" not in captured.err


def test_demo_speed_that_is_no_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from vmfailover.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["demo", "--speed", "fast"])
    assert caught.value.code == 2
    assert "--speed" in capsys.readouterr().err


def test_the_simulated_hyperv_hosts_wire_items_have_their_own_tests() -> None:
    """The host's hostile-client items (bad Content-Length, short bodies, huge bodies, bad Basic
    credentials, tracebacks in faults) are wire tests against a real listener, counted threads
    and all: tests/hyperv_wire/test_hostile_clients.py. This checks they are all still there."""
    from pathlib import Path

    text = (Path(__file__).parent / "hyperv_wire" / "test_hostile_clients.py").read_text()
    for name in (
        "test_a_malformed_content_length_is_400_and_the_connection_closes",
        "test_content_length_2_pow_62_is_413_unread_for_a_known_client",
        "test_non_ascii_or_broken_basic_credentials_are_401",
        "test_a_body_shorter_than_its_length_is_closed_after_the_request_timeout",
        "test_150_connections_with_short_bodies_end_without_a_cap",
        "test_a_20_mb_body_from_a_known_client_is_413_without_being_read",
        "test_an_internal_failure_is_a_generic_fault_with_an_id_in_the_log",
    ):
        assert f"def {name}(" in text, name


# --- fixed here: one test per item ---------------------------------------------------------------

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_inventory_refuses_what_is_not_a_site_naming_its_position() -> None:
    from vmfailover import Inventory

    refused(lambda: Inventory(sites=(None,)), "sites item 1 must be a Site")  # type: ignore[arg-type]
    refused(lambda: Inventory(vms=5), "vms must be a list")  # type: ignore[arg-type]
    refused(lambda: Inventory(hosts={"h": 1}), "hosts must be a list")  # type: ignore[arg-type]


def model_cases() -> list[tuple[type, tuple[object, ...], dict[str, object], str]]:
    """(class, arguments, keyword arguments with one wrong value, a word the error must hold)."""
    from vmfailover import (
        VM,
        Datastore,
        Host,
        IPConfig,
        Network,
        Nic,
        RecoveryPoint,
        Replica,
        Site,
    )

    mac = "00:50:56:00:00:01"
    host, vm, nic, net = ("h", "a"), ("i", "n", "h"), (mac, "n"), ("n", "a")
    ip, replica, point = ("10.0.0.1/24",), ("r", "s", "t", "h", NOW), ("p", "r", NOW)
    return [
        (Site, (None,), {}, "name"),
        (Site, ("",), {}, "name"),
        (Site, ("a",), {"description": 5}, "description"),
        (Host, host, {"cpu_cores": NAN}, "cpu_cores"),
        (Host, host, {"cpu_cores": 10**400}, "cpu_cores"),
        (Host, host, {"memory_mb": -5}, "memory_mb"),
        (Host, host, {"memory_mb": 2.5}, "memory_mb"),
        (Host, host, {"datastores": None}, "datastores"),
        (Host, host, {"networks": [None]}, "networks item 1"),
        (Host, host, {"management_paths": INF}, "management_paths"),
        (Host, host, {"connection": "maybe"}, "connection"),
        (Host, host, {"cluster": ""}, "cluster"),
        (Datastore, ("d", "a", INF, 0), {}, "capacity_bytes"),
        (Datastore, ("d", "a", 1, 2**64), {}, "free_bytes"),
        (Network, net, {"isolated": "no"}, "isolated"),
        (Network, net, {"isolated": 0}, "isolated"),
        (Network, net, {"vlan": 5000}, "vlan"),
        (Network, net, {"vlan": "x"}, "vlan"),
        (IPConfig, (5,), {}, "address"),
        (IPConfig, ip, {"dns": 5}, "dns"),
        (IPConfig, ip, {"dns": [167772161]}, "IP address"),
        (IPConfig, ip, {"gateway": NAN}, "IP address"),
        (IPConfig, ip, {"dns_suffixes": [1]}, "dns_suffixes"),
        (Nic, (0x005056000001, "n"), {}, "MAC"),
        (Nic, ("x" * 100_000, "n"), {}, "MAC"),
        (Nic, nic, {"dhcp": 1}, "dhcp"),
        (Nic, nic, {"ip_configs": ["x"]}, "ip_configs item 1"),
        (Nic, nic, {"label": None}, "label"),
        (VM, vm, {"nics": None}, "nics"),
        (VM, vm, {"nics": "x"}, "nics item 1"),
        (VM, vm, {"tags": [[1]]}, "tags"),
        (VM, vm, {"tags": None}, "tags"),
        (VM, vm, {"cpu": NAN}, "cpu"),
        (VM, vm, {"disk_bytes": -1}, "disk_bytes"),
        (VM, vm, {"datastore": 5}, "datastore"),
        (VM, vm, {"guest_os": None}, "guest_os"),
        (VM, vm, {"power_state": "up"}, "power_state"),
        (Replica, ("r", "s", "t", "h", "2024"), {}, "created_at"),
        (Replica, replica, {"target_datastore": []}, "target_datastore"),
        (Replica, replica, {"state": 1}, "state"),
        (RecoveryPoint, point, {"size_bytes": INF}, "size_bytes"),
        (RecoveryPoint, point, {"tags": None}, "tags"),
        (RecoveryPoint, point, {"consistency": "best"}, "consistency"),
        (RecoveryPoint, point, {"pinned_until": datetime(2024, 1, 1)}, "naive"),
    ]


@pytest.mark.parametrize(
    ("cls", "args", "kwargs", "word"),
    model_cases(),
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_every_model_class_refuses_wrong_values_naming_the_field(
    cls: type, args: tuple[object, ...], kwargs: dict[str, object], word: str
) -> None:
    refused(lambda: cls(*args, **kwargs), word)


def test_an_instant_that_leaves_the_calendar_in_utc_is_refused() -> None:
    from datetime import timedelta, timezone

    from vmfailover import RecoveryPoint

    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    refused(lambda: RecoveryPoint("p", "r", early), "created_at", "years 1 to 9999")


@pytest.mark.parametrize("key", [[], {}, {"a"}, None, 5])
def test_inventory_lookups_refuse_what_cannot_be_a_name(key: object) -> None:
    inventory = lab().inventory()
    refused(lambda: inventory.vm(key), "VM")  # type: ignore[arg-type]
    refused(lambda: inventory.site_of(key))  # type: ignore[arg-type]
    refused(lambda: inventory.host(key))  # type: ignore[arg-type]


def test_a_sequencer_needs_an_order() -> None:
    from vmfailover import Sequencer

    refused(lambda: Sequencer([]), "Sequencer", "StartOrder")  # type: ignore[arg-type]


def test_a_reip_plan_needs_vms() -> None:
    from vmfailover import ReIPRule, ReIPRules

    rules = ReIPRules([ReIPRule("10.0.0.*", "11.0.0.*")])
    refused(lambda: rules.plan(None), "vms")  # type: ignore[arg-type]
    refused(lambda: rules.plan([], in_use=5), "in_use")  # type: ignore[arg-type]


def test_a_network_mapping_target_needs_a_network_name() -> None:
    from vmfailover import NetworkMapping

    refused(lambda: NetworkMapping(same_name=True).target(None, "test"), "network", "None")  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [None, "", 5, b"pw"])
def test_credentials_need_a_secret(secret: object) -> None:
    from vmfailover import Credentials

    refused(lambda: Credentials("u", secret), "secret")  # type: ignore[arg-type]


def test_a_secret_hides_itself_everywhere_and_credentials_compare_by_it() -> None:
    import copy
    import json
    import pickle

    import attrs

    from vmfailover import Credentials, Secret

    text = "hunter2-very-secret"
    credentials = Credentials("admin", text)
    shown = [
        repr(credentials),
        str(credentials),
        f"{credentials}",
        repr(attrs.asdict(credentials)),
        str(attrs.asdict(credentials)),
        repr(attrs.astuple(credentials)),
        f"{credentials.secret}",
        f"{credentials.secret:>40}",
    ]
    assert all(text not in line for line in shown)
    with pytest.raises(TypeError):
        json.dumps(attrs.asdict(credentials))
    for thing in (credentials, credentials.secret):
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(thing)
    assert copy.deepcopy(credentials) == credentials
    assert credentials.secret.reveal() == text
    assert Credentials("admin", text) == credentials
    assert Credentials("admin", "other") != credentials
    assert hash(Credentials("admin", "other")) == hash(credentials)  # the hash tells nothing
    assert Credentials("admin", Secret(text)) == credentials


def test_flags_are_real_booleans_in_backend_settings() -> None:
    from vmfailover import Credentials, HostObservation
    from vmfailover.backends.base import Readiness
    from vmfailover.backends.hyperv.config import HostConnection
    from vmfailover.backends.vsphere.settings import VCenter

    credentials = Credentials("u", "p")
    refused(
        lambda: VCenter(site="a", host="vc", credentials=credentials, insecure="False"), "insecure"
    )  # type: ignore[arg-type]
    refused(lambda: HostConnection("h", "a", verify_tls=0), "verify_tls")  # type: ignore[arg-type]
    refused(lambda: HostConnection("h", "a", tls="no"), "tls")  # type: ignore[arg-type]
    refused(lambda: Readiness(powered_on="yes"), "powered_on")  # type: ignore[arg-type]
    refused(lambda: HostObservation("h", NOW, 0.0, present="no"), "present")  # type: ignore[arg-type]
    refused(lambda: lab().set_boot("vm-001", boots="no"), "boots")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "word"),
    [
        ({"points": -5}, "points"),
        ({"points": 10**6}, "points"),
        ({"points": 2.5}, "points"),
        ({"interval": -1}, "interval"),
        ({"interval": None}, "interval"),
        ({"since_last_sync": "20m"}, "since_last_sync"),
        ({"rate": NAN}, "rate"),
        ({"rate": 10**400}, "rate"),
        ({"seed": []}, "seed"),
        ({"start": "2024-01-01"}, "start"),
        ({"start": datetime(9999, 1, 1, tzinfo=UTC)}, "start"),
    ],
)
def test_the_lab_refuses_bad_arguments(arguments: dict[str, object], word: str) -> None:
    refused(lambda: lab(**arguments), word)  # type: ignore[arg-type]


def test_the_fault_injector_refuses_bad_arguments() -> None:
    from vmfailover.testing import FaultInjector

    faults = FaultInjector()
    for seconds in (NAN, INF, -1, 10**400, "1", None, (0, INF), (NAN, 1), (2, 1), (1, 2, 3)):
        refused(partial(faults.add_latency, seconds), "add_latency")
    refused(lambda: faults.add_latency(1, operations=5), "operations")  # type: ignore[arg-type]
    refused(lambda: faults.add_latency(1, seed=NAN), "seed")  # type: ignore[arg-type]
    for probability in (NAN, INF, -0.1, 2, "1", None):
        refused(partial(faults.fail_randomly, probability), "probability")
    refused(lambda: faults.fail(None), "operation")  # type: ignore[arg-type]
    refused(lambda: faults.fail("power_on", nth=NAN), "nth")  # type: ignore[arg-type]
    refused(lambda: faults.fail("power_on", times=0), "times")
    refused(lambda: faults.fail("power_on", transient="no"), "transient")  # type: ignore[arg-type]
    refused(lambda: faults.crash_at(-1), "crash_at")
    refused(lambda: faults.crash_at(2.5), "crash_at")  # type: ignore[arg-type]
    assert faults.before_call("power_on", None) == 0  # nothing was half-added


def test_simulate_refuses_durations_and_runs_it_cannot_compute() -> None:
    from vmfailover import LogNormal, Uniform, simulate

    order = StartOrder()
    order.add("a")
    refused(lambda: simulate(order, {"a": 10**400}), "duration for 'a'")
    refused(lambda: simulate(order, {"a": 1e308}), "century")
    refused(lambda: simulate(order, {"a": 1}, runs=10**7), "runs")
    refused(lambda: simulate(order, {"a": 1}, failures=5), "failures")  # type: ignore[arg-type]
    refused(lambda: simulate(order, {"a": 1}, seed=[1]), "seed")  # type: ignore[arg-type]
    refused(lambda: LogNormal(30, 1e300), "sigma")
    refused(lambda: Uniform(0, 10**400), "high")
    assert simulate(order, {"a": LogNormal(30, 5)}, runs=50, seed=1).rto > 0


def test_a_calendar_duration_with_thousands_of_digits_is_refused() -> None:
    from vmfailover import CalendarDuration

    refused(lambda: CalendarDuration.parse("9" * 5000 + "d"), "longer than any calendar")
    assert CalendarDuration.parse("0" * 5000 + "5d") == CalendarDuration(days=5)
    refused(lambda: CalendarDuration(years=-5), "years")
    refused(lambda: CalendarDuration(days="5"), "days")  # type: ignore[arg-type]


def test_open_backend_names_an_option_the_backend_does_not_take() -> None:
    from vmfailover.backends import open_backend

    error = refused(lambda: open_backend("memory", bogus=1), "memory", "bogus", "seed")
    assert isinstance(error, ValidationError)
    refused(lambda: open_backend(["memory"]), "backend")  # type: ignore[arg-type]
    refused(lambda: open_backend("memory", seed="x"), "seed")


def test_a_huge_value_is_shortened_in_the_error_that_quotes_it() -> None:
    from vmfailover import Site

    error = refused(lambda: Site("x" * 100_000, description=5), "description must be text")  # type: ignore[arg-type]
    assert len(str(error)) < 500
    assert "(99,747 characters left out)" in str(error)  # of the 100,007 of "Site 'x...'"


def test_an_integer_too_large_for_a_float_is_refused_as_bad_input(tmp_path: Path) -> None:
    """``math.isfinite(10**400)`` raises OverflowError: each check that called it directly let
    that escape instead of our error (the harness met it by chance, in one run of many)."""
    from vmfailover import SQLiteLease
    from vmfailover.backends.memory import MemoryBackend

    huge = 10**400
    refused(lambda: SQLiteLease(tmp_path / "lease.db", timeout=huge), "SQLite lease timeout")
    lease = SQLiteLease(tmp_path / "lease.db")
    refused(lambda: lease.acquire("plan", "site-a", huge), "lease ttl")
    lease.close()
    saved = tmp_path / "lab.json"
    lab().save(saved)
    document = json.loads(saved.read_text())
    document["clock"]["rate"] = huge
    saved.write_text(json.dumps(document))
    refused(lambda: MemoryBackend.load(saved), "clock.rate", "finite number")


def test_what_the_harness_found_stays_refused() -> None:
    """Calls the harness once failed on (each raised TypeError, AttributeError, ValueError or
    OverflowError)."""
    from vmfailover import (
        CalendarDuration,
        Cluster,
        ClusterPolicy,
        Findings,
        HostHealth,
        ReIPRules,
        SQLiteLease,
        TCPPort,
        choose_point,
        rpo_status,
        simulate,
    )
    from vmfailover.testing import FaultInjector

    backend = lab()
    inventory = backend.inventory()
    order = StartOrder()
    order.add("a")
    result = simulate(order, {"a": 1})
    calls: list[Callable[[], object]] = [
        lambda: order.compile(weights={"a": 10**400}),
        lambda: order.add("b", timeout=10**400),
        lambda: TCPPort(22, timeout=10**400),
        lambda: backend.delete_recovery_point([[1]]),  # type: ignore[arg-type]
        lambda: backend.fail_site([]),  # type: ignore[arg-type]
        lambda: backend.shutdown_guest("vm-001", None),  # type: ignore[arg-type]
        lambda: backend.add_host("h9", "site-a", bogus=1),
        lambda: backend.blocks_differing([1], [2]),  # type: ignore[arg-type]
        lambda: inventory.has_network([], []),  # type: ignore[arg-type]
        lambda: VirtualClock().wait([], 1),  # type: ignore[arg-type]
        lambda: lab_plan().diff([]),  # type: ignore[arg-type]
        lambda: lab_plan().validate(None, "test"),  # type: ignore[arg-type]
        lambda: CalendarDuration(days=1).before([], UTC),  # type: ignore[arg-type]
        lambda: ClusterPolicy().cpu_capacity([]),  # type: ignore[arg-type]
        lambda: Cluster("c", ["h"]).members(None),  # type: ignore[arg-type]
        lambda: ReIPRules([]).label([]),  # type: ignore[arg-type]
        lambda: HostHealth(30).state([]),  # type: ignore[arg-type]
        lambda: HostHealth(30).observe([]),  # type: ignore[arg-type]
        lambda: result.text(rows=[]),  # type: ignore[arg-type]
        lambda: choose_point([[1]], "latest"),  # type: ignore[list-item]
        lambda: FaultInjector().before_call([], None),  # type: ignore[arg-type]
        lambda: Findings(None),  # type: ignore[arg-type]
        lambda: rpo_status([[1]], {"dc01": timedelta(microseconds=1)}),  # type: ignore[arg-type]
        lambda: SQLiteLease("\x00"),
        lambda: SQLiteLease(os.devnull, clock=[[1]]),  # type: ignore[arg-type]
    ]
    for position, call in enumerate(calls):
        error = bounded(call)
        assert isinstance(error, VMFailoverError), (position, error)
    for wrong in (None, [], "text", [1]):
        assert "needs one or more Finding objects" in str(ValidationError(wrong))  # type: ignore[arg-type]


# --- the harness: every public name, driven by its signature --------------------------------------

EXAMPLES = 150
"""Calls per public name and run."""

METHOD_EXAMPLES = 80
"""Calls per public method and run."""

CALL_TIMEOUT = 30.0
"""Seconds one call may take before it counts as a hang: generous for a loaded machine."""

NOT_CALLED: dict[str, str] = {
    "Witness": "a Callable alias for type hints",
    "Probe": "a Union alias for type hints",
}
"""Public names the harness does not call, and why. Two kinds are left out by what they are:
Protocols and abstract classes (``Backend``, ``Clock``, ``Journal`` ...: implemented, never
constructed) and enums (calling an enum
class is Python's lookup by value; our APIs take their values through ``as_enum``, which the
calls of every other name exercise)."""


def public_names() -> list[tuple[str, str]]:
    """(module, name) of every callable in ``__all__`` of vmfailover and vmfailover.testing."""
    import enum
    import importlib

    found = []
    for module_name in ("vmfailover", "vmfailover.testing"):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            target = getattr(module, name)
            if name in NOT_CALLED or not callable(target):
                continue
            if isinstance(target, type) and issubclass(target, enum.Enum):
                continue
            if getattr(target, "_is_protocol", False) or inspect.isabstract(target):
                continue
            found.append((module_name, name))
    return found


def parameters(target: Callable[..., object]) -> list[inspect.Parameter]:
    """The parameters to draw for ``target``. An error class that keeps ``BaseException``'s
    constructor takes messages only: its ``**kwargs`` is a signature artefact."""
    try:
        signature = inspect.signature(target)
    except ValueError:  # a builtin constructor (an exception class): messages only
        return [inspect.Parameter("messages", inspect.Parameter.VAR_POSITIONAL)]
    found = list(signature.parameters.values())
    if isinstance(target, type) and issubclass(target, BaseException):
        found = [p for p in found if p.kind is not p.VAR_KEYWORD]
    return found


def call_strategy(
    params: list[inspect.Parameter],
) -> st.SearchStrategy[tuple[list[object], dict[str, object]]]:
    """Positional and keyword arguments for one call, each parameter drawn on its own."""
    positional: list[st.SearchStrategy[object]] = []
    keywords: dict[str, st.SearchStrategy[object]] = {}
    extra_args: st.SearchStrategy[list[object]] = st.just([])
    extra_kwargs: st.SearchStrategy[dict[str, object]] = st.just({})
    for param in params:
        annotation = param.annotation if isinstance(param.annotation, str) else ""
        if param.kind is param.VAR_POSITIONAL:
            extra_args = st.lists(bad_values.hostile(), max_size=2)
        elif param.kind is param.VAR_KEYWORD:
            names = st.sampled_from(["bogus", "x"])
            extra_kwargs = st.dictionaries(names, bad_values.hostile(), max_size=1)
        else:
            value = bad_values.argument(annotation, param.default is not param.empty)
            if param.kind is param.POSITIONAL_ONLY:
                positional.append(value)
            else:
                keywords[param.name] = value

    def assemble(
        drawn: tuple[tuple[object, ...], list[object], dict[str, object], dict[str, object]],
    ) -> tuple[list[object], dict[str, object]]:
        args, more_args, named, more_named = drawn
        kept = {k: v for k, v in named.items() if v is not bad_values.OMIT}
        return [a for a in args if a is not bad_values.OMIT] + more_args, {**more_named, **kept}

    return st.tuples(
        st.tuples(*positional), extra_args, st.fixed_dictionaries(keywords), extra_kwargs
    ).map(assemble)


def harness_settings(examples: int) -> settings:
    """No deadline (each call has its own time bound), no example database (the harness is
    fresh each run), no health checks (hostile strategies are slow and filter much on purpose)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


CALLS = {"count": 0}


def bounded(call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` on a thread; its exception (None if it returned), or a failure if it hangs."""
    outcome: dict[str, BaseException] = {}
    done = threading.Event()

    def run() -> None:
        try:
            call()
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    CALLS["count"] += 1
    threading.Thread(target=run, name="bad-input-call", daemon=True).start()
    if not done.wait(CALL_TIMEOUT):
        pytest.fail(f"the call did not return within {CALL_TIMEOUT:g} s")
    return outcome.get("error")


def judge(
    name: str, target: Callable[..., object], args: list[object], kwargs: dict[str, object]
) -> None:
    """The call succeeds or raises one of our errors; the failure message shows the call."""
    error = bounded(lambda: target(*args, **kwargs))
    if error is None or isinstance(error, VMFailoverError):
        return
    shown = ", ".join(
        [*(f"{a!r:.80}" for a in args), *(f"{k}={v!r:.80}" for k, v in kwargs.items())]
    )
    detail = "".join(traceback.format_exception(error)[-3:])
    pytest.fail(f"{name}({shown}) raised {type(error).__name__}, not one of our errors:\n{detail}")


@pytest.fixture(scope="module", autouse=True)
def _in_a_scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Drawn text becomes file names (a journal's path): they land in a scratch folder, never
    in the checkout."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("bad-input-cwd"))
    yield
    os.chdir(before)


@pytest.fixture(scope="module", autouse=True)
def _count_calls() -> Iterator[None]:
    yield
    print(f"\nbad-input harness: {CALLS['count']} calls")


@pytest.mark.parametrize(("module_name", "name"), public_names(), ids=lambda v: v)
def test_every_public_name_refuses_bad_input_with_our_errors(module_name: str, name: str) -> None:
    import importlib

    target = getattr(importlib.import_module(module_name), name)
    calls = call_strategy(parameters(target))

    @harness_settings(EXAMPLES)
    @given(calls)
    def one_call(call: tuple[list[object], dict[str, object]]) -> None:
        args, kwargs = call
        judge(name, target, args, kwargs)

    one_call()


# --- the harness, part two: the public methods of real instances ---------------------------------


def _finished_run() -> object:
    """A run that ended (a regular failover of one VM, site A lost): for Run and RunReport."""
    backend = lab(start=datetime(2024, 1, 1, tzinfo=UTC))
    backend.fail_site("site-a")
    run = quick_runner(backend).start(lab_plan(("dc01",)), kind="regular")
    run.wait(timeout=60)
    return run


INSTANCES: dict[str, tuple[Callable[[], object], bool]] = {
    # class name: (a factory of a real instance, whether each call gets a fresh one)
    "Inventory": (lambda: bad_values.samples()["Inventory"][0], False),
    "MemoryBackend": (lambda: lab(start=datetime(2024, 1, 1, tzinfo=UTC)), False),
    "FaultInjector": (lambda: __import__("vmfailover.testing").testing.FaultInjector(), True),
    "VirtualClock": (lambda: VirtualClock(datetime(2024, 1, 1, tzinfo=UTC)), True),
    "StartOrder": (lambda: lab_order(), True),
    "Sequencer": (lambda: __import__("vmfailover").Sequencer(lab_order()), True),
    "FailoverPlan": (lambda: bad_values.samples()["FailoverPlan"][0], False),
    "NetworkMapping": (lambda: bad_values.samples()["NetworkMapping"][0], False),
    "ReIPRules": (lambda: bad_values.samples()["ReIPRules"][0], False),
    "ReIPRule": (lambda: bad_values.samples()["ReIPRule"][0], False),
    "RetentionPolicy": (lambda: bad_values.samples()["RetentionPolicy"][0], False),
    "CalendarDuration": (lambda: bad_values.samples()["CalendarDuration"][0], False),
    "ClusterPolicy": (lambda: bad_values.samples()["ClusterPolicy"][0], False),
    "Cluster": (lambda: bad_values.samples()["Cluster"][0], False),
    "HostHealth": (lambda: __import__("vmfailover").HostHealth(30), True),
    "SimulationResult": (
        lambda: __import__("vmfailover").simulate(lab_order(), dict.fromkeys(LAB_DEPENDENCIES, 30)),
        False,
    ),
    "Placement": (
        lambda: __import__("vmfailover").place(
            bad_values.samples()["VM"], bad_values.samples()["Host"]
        ),
        False,
    ),
    "Run": (_finished_run, False),
    "RunReport": (lambda: _finished_run().report, False),  # type: ignore[attr-defined]
    "VM": (lambda: bad_values.samples()["VM"][0], False),
    "Replica": (lambda: bad_values.samples()["Replica"][0], False),
    "RecoveryPoint": (lambda: bad_values.samples()["RecoveryPoint"][0], False),
    "HostMonitor": (
        lambda: __import__("vmfailover").HostMonitor(lab(), clock=VirtualClock()),
        False,
    ),
    "Runner": (lambda: quick_runner(lab()), False),
}

METHODS_NOT_CALLED: dict[str, str] = {
    "FailoverPlan.save": "writes a file where it is told: tests/test_plan_files_hostile.py",
    "FailoverPlan.load": "reads a file: tests/test_plan_files_hostile.py",
    "HostMonitor.run": "loops until stopped: its arguments are checked by HostMonitor()",
    "HostMonitor.start": "starts the loop's thread: its arguments are checked by HostMonitor()",
    "Runner.failover": "runs a failover per call: its bad arguments are the tests above",
    "Runner.start": "runs a failover per call: its bad arguments are the tests above",
    "Runner.cleanup": "cleans a run up: test_bad_requests_get_our_errors in test_kinds.py",
}


def lab_order() -> StartOrder:
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


def public_methods() -> list[tuple[str, str]]:
    """(class, method) for every public method our code defines on the classes above."""
    import vmfailover
    import vmfailover.testing

    found = []
    for class_name in INSTANCES:
        cls = getattr(vmfailover, class_name, None) or getattr(vmfailover.testing, class_name)
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or f"{class_name}.{name}" in METHODS_NOT_CALLED:
                continue
            if isinstance(inspect.getattr_static(cls, name), property) or not callable(member):
                continue
            if not getattr(member, "__module__", "").startswith("vmfailover"):
                continue  # inherited from the standard library
            found.append((class_name, name))
    return found


@pytest.mark.parametrize(("class_name", "method"), public_methods(), ids=lambda v: v)
def test_every_public_method_refuses_bad_input_with_our_errors(
    class_name: str, method: str
) -> None:
    factory, fresh = INSTANCES[class_name]
    shared = None if fresh else factory()
    unbound = getattr(type(shared) if shared is not None else type(factory()), method)
    params = parameters(unbound)
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    calls = call_strategy(params)

    @harness_settings(METHOD_EXAMPLES)
    @given(calls)
    def one_call(call: tuple[list[object], dict[str, object]]) -> None:
        args, kwargs = call
        instance = shared if shared is not None else factory()
        judge(f"{class_name}.{method}", getattr(instance, method), args, kwargs)

    one_call()


def test_a_recovery_point_or_replica_without_its_creation_time_is_refused() -> None:
    """created_at=None was accepted (the optional-time validator skipped None)."""
    from vmfailover.model import RecoveryPoint, Replica

    with pytest.raises(ValidationError, match="created_at"):
        RecoveryPoint("p1", "r1", None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="created_at"):
        Replica("r1", "vm-1", "vm-1-replica", "esx-b1", None)  # type: ignore[arg-type]
