"""Bad input never escapes as a raw exception (issue 11).

One test per item the issue found, then a hypothesis harness driven by the signatures of every
public name of ``vmfailover`` and ``vmfailover.testing``: each call succeeds or raises one of our
errors, never anything else, and never hangs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from vmfailover import (
    FailoverPlan,
    Runner,
    RunResult,
    VirtualClock,
)
from vmfailover.engine.events import RunEvent, StepStarted, VMStep
from vmfailover.engine.runner import RetryPolicy
from vmfailover.errors import ConflictError, VMFailoverError
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
