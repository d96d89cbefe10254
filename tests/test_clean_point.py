"""The clean-point search on the lab: its checks, its errors, cancel and interrupt, cleanup, and how
its result plugs into a plan. (Every damage moment among 30 points is in test_clean_point_lab.py.)

Checks here judge a point by its time (``good while created before a moment``), so these tests do
not depend on how the lab marks damage.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from vmfailover import (
    FailoverPlan,
    NetworkMapping,
    ReIPRule,
    ReIPRules,
    Runner,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.claims import claims_for
from vmfailover.engine.clean_point import CleanPointSearch, find_clean_point
from vmfailover.engine.clean_point_result import CleanPointResult
from vmfailover.engine.point_checks import BootedCopy, CleanPointError
from vmfailover.errors import ConflictError, NotFoundError, ValidationError
from vmfailover.model import PowerState, RecoveryPoint
from vmfailover.policy.clean_point import Verdict
from vmfailover.policy.probes import CallableProbe, IPAssigned, ToolsHeartbeat
from vmfailover.testing import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, lab

MUTATING = {
    "create_replica", "sync", "delete_recovery_point", "revert", "connect_nic", "set_guest_ip",
    "power_on", "shutdown_guest", "power_off", "create_test_copy", "remove_test_copy",
    "reverse_replication",
}  # fmt: skip


class Recording:
    """The backend, with every changing call and its target recorded (a test seam)."""

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._backend, name)
        if name not in MUTATING:
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, str(args[0])))
            return found(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def shared() -> MemoryBackend:
    """A lab with 12 points per replica; the searches here must leave it exactly as it was."""
    return lab(points=12)


def points_of(backend: Any, vm: str) -> tuple[RecoveryPoint, ...]:
    inventory = backend.inventory()
    return tuple(backend.recovery_points(inventory.replica_of(vm).id))


def good_before(moment: datetime) -> Callable[[BootedCopy], bool]:
    def check(copy: BootedCopy) -> bool:
        return copy.point.created_at < moment

    return check


@pytest.fixture
def untouched(shared: MemoryBackend) -> Iterator[None]:
    before = shared.inventory()
    disks = {vm.id: dict(shared.disk(vm.id)) for vm in before.vms}
    yield
    assert shared.inventory() == before
    assert {vm.id: dict(shared.disk(vm.id)) for vm in before.vms} == disks
    assert claims_for(shared).holder("vm-003") is None


def test_production_is_never_touched_and_copies_run_only_on_isolated_networks(
    shared: MemoryBackend, untouched: None
) -> None:
    recording = Recording(shared)
    damage = points_of(shared, "db01")[7].created_at
    seen: list[str] = []

    def check(copy: BootedCopy) -> bool:
        inventory = copy.backend.inventory()
        vm = inventory.vm(copy.vm_id)
        assert vm.power_state is PowerState.ON
        assert all(inventory.network("site-b", nic.network).isolated for nic in vm.nics)
        assert all(str(a).startswith("172.16.") for a in copy.addresses)
        source = inventory.vm("db01")
        assert source.power_state is PowerState.ON  # the source runs on, untouched
        seen.append(copy.vm_id)
        return copy.point.created_at < damage

    result = find_clean_point(
        recording,  # type: ignore[arg-type]
        ["db01"],
        check,
        parallel=2,
        network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        reip=ReIPRules([ReIPRule("192.168.0.0/16", "172.16.0.0/16")]),
    )
    group = result.group("db01")
    assert group.clean is not None
    assert group.clean.points["db01"] == points_of(shared, "db01")[6]
    copies = {copy for verdict in group.verdicts for copy in verdict.copies}
    assert copies == set(seen) and len(copies) == group.boots
    replicas = {shared.inventory().replica_of("db01").id}
    for operation, target in recording.calls:
        if operation == "create_test_copy":
            assert target in replicas
        else:
            assert operation in {"connect_nic", "set_guest_ip", "power_on", "remove_test_copy"}
            assert target in copies, (operation, target)
    assert result.cleanup.restored
    assert sorted(result.cleanup.removed) == sorted(copies)


def test_a_group_is_recovered_to_one_consistent_moment(
    shared: MemoryBackend, untouched: None
) -> None:
    app_damage = points_of(shared, "app01")[9].created_at

    def check(copy: BootedCopy) -> bool:
        return copy.vm != "app01" or copy.point.created_at < app_damage

    result = find_clean_point(shared, [["db01", "app01"]], check, network="Test-App")
    group = result.groups[0]
    assert group.vms == ("db01", "app01")
    assert group.clean is not None
    assert group.clean.points["app01"] == points_of(shared, "app01")[8]
    assert group.clean.points["db01"] == points_of(shared, "db01")[8]
    chosen = result.recovery_points()
    assert set(chosen) == {"db01", "app01"}
    assert all(verdict.copies and len(verdict.copies) == 2 for verdict in group.verdicts)
    bad = [v for v in group.verdicts if not v.good]
    assert all(v.reason.startswith("app01: ") for v in bad)


def test_the_result_plugs_into_a_plan_whose_test_failover_uses_the_clean_point(
    shared: MemoryBackend, untouched: None
) -> None:
    damage = points_of(shared, "web01")[4].created_at
    result = find_clean_point(
        shared, ["web01", "dc01"], good_before(damage), network=LAB_TEST_NETWORK_MAP
    )
    assert result.found
    plan = FailoverPlan(
        "web",
        ["web01", "dc01", "db01"],
        network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        recovery_point={"db01": points_of(shared, "db01")[5].created_at},
    )
    ready = result.apply_to(plan)
    assert ready.point_choice("db01") == points_of(shared, "db01")[5].created_at
    direct = FailoverPlan("web", ["web01", "dc01"], recovery_point=result.recovery_points())
    assert direct.point_choice("web01") == result.group("web01").clean.at  # type: ignore[union-attr]
    runner = Runner(shared)
    run = runner.start(ready, kind="test")
    report = run.wait(timeout=60)
    used = {vm.vm: vm.recovery_point for vm in report.vms}
    assert used["web01"] == points_of(shared, "web01")[3].id
    assert used["dc01"] == points_of(shared, "dc01")[3].id
    assert used["db01"] == points_of(shared, "db01")[5].id
    runner.cleanup(run)


def test_a_scan_finds_the_newest_good_point_when_damage_comes_and_goes(
    shared: MemoryBackend, untouched: None
) -> None:
    points = points_of(shared, "dc01")
    good = {points[2].id, points[5].id, points[6].id}

    def check(copy: BootedCopy) -> bool:
        return copy.point.id in good

    scanned = find_clean_point(
        shared, "dc01", check, assume_monotone=False, parallel=3, network="Test-App"
    )
    group = scanned.groups[0]
    assert group.clean is not None and group.clean.points["dc01"] == points[6]
    assert group.strategy == "scan"
    assert [v.index for v in group.verdicts] == [11, 10, 9, 8, 7, 6]
    assert group.rounds == 2
    # Bisecting, three at a time, sees point 3 fail and the newer point 6 pass: it says so.
    bisected = find_clean_point(shared, "dc01", check, parallel=3, network="Test-App")
    group = bisected.groups[0]
    assert [v.index for v in group.verdicts[:3]] == [9, 6, 3]
    assert group.clean is not None and group.clean.points["dc01"] == points[6]
    assert "not monotone" in group.warnings[0] and "not monotone" in str(bisected)


def test_since_limits_the_candidates(shared: MemoryBackend, untouched: None) -> None:
    points = points_of(shared, "dc02")
    recent = find_clean_point(
        shared, "dc02", good_before(points[3].created_at), since=points[6].created_at,
        network="Test-App",
    )  # fmt: skip
    group = recent.groups[0]
    assert [c.points["dc02"] for c in group.candidates] == list(points[6:])
    assert group.clean is None and group.complete
    assert "no clean point among 6 points" in group.summary()
    with pytest.raises(NotFoundError, match="no clean point for 'dc02'"):
        recent.recovery_points()
    now = shared.clock.now()
    span = now - points[9].created_at
    by_span = find_clean_point(shared, "dc02", good_before(now), since=span, network="Test-App")
    assert [c.points["dc02"] for c in by_span.groups[0].candidates] == list(points[9:])
    by_text = find_clean_point(shared, "dc02", good_before(now), since="1d", network="Test-App")
    assert len(by_text.groups[0].candidates) == len(points)


def test_an_argv_check_gets_the_copy_in_its_environment(
    shared: MemoryBackend, untouched: None
) -> None:
    cutoff = points_of(shared, "mon01")[5].created_at.isoformat()
    script = (
        "import os, sys\n"
        "assert os.environ['VMFAILOVER_VM'] == 'mon01'\n"
        "assert os.environ['VMFAILOVER_VM_ID'].startswith('vm-011-replica-test-')\n"
        "assert os.environ['VMFAILOVER_ADDRESSES']\n"
        f"sys.exit(0 if os.environ['VMFAILOVER_POINT_TIME'] < {cutoff!r} else 3)\n"
    )
    result = find_clean_point(shared, "mon01", [sys.executable, "-c", script], network="Test-App")
    group = result.groups[0]
    assert group.clean is not None and group.clean.points["mon01"] == points_of(shared, "mon01")[4]
    assert any("exited with status 3" in v.reason for v in group.verdicts if not v.good)


def test_a_probe_is_a_check(shared: MemoryBackend, untouched: None) -> None:
    newest = points_of(shared, "file01")[-1]
    result = find_clean_point(shared, "file01", ToolsHeartbeat(timeout=120), network="Test-App")
    assert result.groups[0].clean is not None
    assert result.groups[0].clean.points["file01"] == newest
    assert result.groups[0].verdicts[-1].reason == "guest tools heartbeat"
    assert result.groups[0].boots <= 4  # ceil(log2(12 + 1))

    cutoff = points_of(shared, "app02")[2].created_at
    mixed = find_clean_point(
        shared,
        ["file01", "app02"],
        {"file01": IPAssigned(timeout=60), "app02": good_before(cutoff)},
        network="Test-App",
    )
    assert mixed.group("file01").clean is not None
    assert mixed.group("app02").clean is not None
    assert mixed.group("app02").clean.points["app02"] == points_of(shared, "app02")[1]
    probe_only = find_clean_point(
        shared, "app03", CallableProbe(lambda context: True, timeout=90), network="Test-App"
    )
    assert probe_only.groups[0].clean is not None
    assert probe_only.groups[0].clean.points["app03"] == points_of(shared, "app03")[-1]


def test_a_copy_that_never_becomes_ready_is_a_bad_point(
    shared: MemoryBackend, untouched: None
) -> None:
    result = find_clean_point(
        shared, "web02", IPAssigned(timeout=10), network="Test-Web", timeout=10
    )
    group = result.groups[0]
    assert group.clean is None and group.complete
    assert all("within 10 s" in v.reason for v in group.verdicts)
    assert group.boots == 4  # ceil(log2(13)): each boot was judged bad


# --- errors, cancel and interrupt: every copy removed ---------------------------------------------


def test_a_check_that_raises_stops_the_search_and_its_copies_are_removed(
    shared: MemoryBackend, untouched: None
) -> None:
    def check(copy: BootedCopy) -> bool:
        raise RuntimeError("the database would not open")

    with pytest.raises(
        CleanPointError, match="raised RuntimeError: the database would not open"
    ) as caught:
        find_clean_point(shared, "db02", check, parallel=4, network="Test-App")
    assert any("inventory restored" in note for note in caught.value.__notes__)
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("answer", "message"),
    [("yes", "returned 'yes'"), (None, "returned None"), (1, "returned 1")],
)
def test_a_check_must_answer_true_or_false(
    shared: MemoryBackend, untouched: None, answer: object, message: str
) -> None:
    with pytest.raises(CleanPointError, match=message):
        find_clean_point(shared, "db02", lambda copy: answer, network="Test-App")  # type: ignore[arg-type,return-value]


def test_a_check_that_does_not_answer_in_time_stops_the_search(
    shared: MemoryBackend, untouched: None
) -> None:
    def slow(copy: BootedCopy) -> bool:
        shared.clock.sleep(3600)
        return True

    with pytest.raises(CleanPointError, match="did not answer within 120 s"):
        find_clean_point(shared, "db02", slow, network="Test-App", timeout=120)


def test_a_command_that_cannot_start_stops_the_search(
    shared: MemoryBackend, untouched: None
) -> None:
    with pytest.raises(CleanPointError, match="could not start"):
        find_clean_point(shared, "db02", ["/nonexistent/check"], network="Test-App")


def test_transient_backend_faults_are_retried_and_the_answer_holds() -> None:
    backend = lab(points=10)
    points = points_of(backend, "db01")
    before = backend.inventory()
    backend.faults.fail_randomly(
        0.3, operations={"create_test_copy", "connect_nic", "power_on", "readiness"}, seed=7
    )
    result = find_clean_point(
        backend, "db01", good_before(points[4].created_at), parallel=2, network="Test-App"
    )
    backend.faults.clear()
    assert result.groups[0].clean is not None
    assert result.groups[0].clean.points["db01"] == points[3]
    assert backend.inventory() == before


def test_a_copy_that_cannot_be_made_stops_the_search() -> None:
    backend = lab(points=6)
    before = backend.inventory()
    backend.faults.fail("create_test_copy", transient=False, message="datastore full")
    with pytest.raises(CleanPointError, match=r"could not be started: .*datastore full"):
        find_clean_point(backend, "db01", IPAssigned(), network="Test-App")
    assert backend.inventory() == before


def test_a_round_that_hangs_is_given_up_and_its_copies_still_go_away() -> None:
    backend = lab(points=6)
    before = backend.inventory()
    backend.faults.add_latency(10_000, operations={"power_on"})
    with pytest.raises(CleanPointError, match="did not finish within 3620 s") as caught:
        find_clean_point(backend, "db01", IPAssigned(), network="Test-App", timeout=10)
    assert any("may remain" in note for note in caught.value.__notes__)
    backend.faults.clear()
    stopped = threading.Event()
    for _ in range(200):  # the abandoned trial wakes from its power-on and removes its copy
        if backend.inventory() == before:
            stopped.set()
            break
        stopped.wait(0.05)
    assert stopped.is_set(), backend.inventory()


def test_cancel_stops_the_search_and_removes_every_copy(
    shared: MemoryBackend, untouched: None
) -> None:
    searches: list[CleanPointSearch] = []
    judged = threading.Event()

    def check(copy: BootedCopy) -> bool:
        if judged.is_set():
            searches[0].cancel()
        judged.set()
        return True

    search = CleanPointSearch(shared, "app01", check, parallel=3, network="Test-App")
    searches.append(search)
    result = search.start().wait(timeout=60)
    assert result.cancelled and search.done
    group = result.groups[0]
    assert not group.complete and group.clean is None
    assert group.boots <= 3 and group.rounds == 1
    assert "cancelled" in group.summary()
    assert result.cleanup.restored
    with pytest.raises(NotFoundError, match="cancelled"):
        result.recovery_points()
    with pytest.raises(ConflictError, match="started already"):
        search.run()


def test_ctrl_c_stops_the_search_removes_its_copies_and_is_raised(
    shared: MemoryBackend, untouched: None
) -> None:
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.fail("signals reach the main thread only; run this test there")

    pressed = threading.Lock()
    delivered = threading.Event()

    def interrupt(signum: int, frame: object) -> None:  # Python's own behaviour, observed
        delivered.set()
        raise KeyboardInterrupt

    def check(copy: BootedCopy) -> bool:
        if pressed.acquire(blocking=False):  # once: a second Ctrl-C would stop the cleanup wait
            os.kill(os.getpid(), signal.SIGINT)
            # The signal reaches the main thread when it next runs Python code: the check
            # returns only after that, so the search cannot finish first (it did on a busy CI).
            delivered.wait(30)
        return True

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            find_clean_point(shared, "app02", check, parallel=2, network="Test-App")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert delivered.is_set()
    assert any("inventory restored" in note for note in caught.value.__notes__)


def test_a_search_claims_its_vms_so_no_failover_acts_on_them_meanwhile(
    shared: MemoryBackend, untouched: None
) -> None:
    release = threading.Event()
    inside = threading.Event()

    def check(copy: BootedCopy) -> bool:
        inside.set()
        return release.wait(30)

    search = CleanPointSearch(shared, "db01", check, network="Test-App").start()
    assert inside.wait(30)
    try:
        claims = claims_for(shared)
        assert {claims.holder(key) for key in ("vm-003", "replica-vm-003", "vm-003-replica")} == {
            search.id
        }
        # The replica's state refuses a failover too; the claim holds even where it would not.
        with pytest.raises((ConflictError, ValidationError)):
            Runner(shared).start(FailoverPlan("db", ["db01"]), kind="regular", force=True)
        with pytest.raises(ConflictError, match=search.id):
            claims.claim("another run", ["replica-vm-003"])
        with pytest.raises(ConflictError, match="still running"):
            search.wait(timeout=0)
    finally:
        release.set()
    assert search.wait(timeout=60).found


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "item"),
    [
        ({"vms": []}, "vms"),
        ({"vms": 42}, "vms"),
        ({"vms": ["db01", ["app01", "db01"]]}, "VM 'db01'"),
        ({"vms": [[]]}, "vms[0]"),
        ({"vms": [["db01", 3]]}, "vms[0]"),
        ({"check": "check-db --quick"}, "check"),
        ({"check": []}, "check"),
        ({"check": 42}, "check"),
        ({"check": {"web01": IPAssigned()}}, "check for VM 'web01'"),
        ({"parallel": 0}, "parallel"),
        ({"parallel": 2.0}, "parallel"),
        ({"assume_monotone": 1}, "assume_monotone"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"since": datetime(2024, 1, 1)}, "since"),
        ({"since": "soon"}, "since"),
        ({"network": 7}, "network"),
        ({"reip": "10.0.0.*"}, "reip"),
        ({"backend": object()}, "find_clean_point backend"),
    ],
)
def test_bad_input_is_refused_naming_the_item(
    shared: MemoryBackend, kwargs: dict[str, object], item: str
) -> None:
    arguments: dict[str, object] = {"backend": shared, "vms": "db01", "check": IPAssigned()}
    arguments.update(kwargs)
    with pytest.raises(ValidationError) as caught:
        CleanPointSearch(**arguments)  # type: ignore[arg-type]
    assert caught.value.findings[0].item == item


def test_copies_that_would_meet_production_are_refused_before_any_exists(
    shared: MemoryBackend, untouched: None
) -> None:
    recording = Recording(shared)
    with pytest.raises(ValidationError, match="not isolated"):
        find_clean_point(recording, "db01", IPAssigned(), network=LAB_NETWORK_MAP)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not isolated"):
        find_clean_point(recording, "db01", IPAssigned())  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="nosuchvm"):
        find_clean_point(recording, "nosuchvm", IPAssigned(), network="Test-App")  # type: ignore[arg-type]
    assert recording.calls == []


def test_a_vm_without_points_has_no_clean_point_and_boots_nothing() -> None:
    backend = lab(points=0)
    result = find_clean_point(backend, "db01", IPAssigned(), network="Test-App")
    assert result.groups[0].candidates == () and result.groups[0].boots == 0
    assert not result.found and "(no points)" in str(result)


# --- showing it ----------------------------------------------------------------------------------


def test_the_result_renders_as_text_and_as_an_svg_time_line(
    shared: MemoryBackend, untouched: None
) -> None:
    damage = points_of(shared, "web03")[8].created_at
    result = find_clean_point(shared, "web03", good_before(damage), network="Test-Web")
    text = str(result)
    group = result.groups[0]
    assert "web03: newest clean point" in text and "(chosen)" in text
    assert f"{group.boots} boots in {group.rounds} rounds" in text
    page = result._repr_html_()
    assert page.count("<svg") == 1 and "<script" not in page
    assert page.count("<circle") == len(group.candidates) + 1  # every point, and the ring
    assert 'fill="#16a34a"' in page and 'fill="#dc2626"' in page
    assert "chosen" in page
    assert Verdict.BAD.value in page


def test_the_docs_examples_run() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "clean-point.md").read_text()
    first, group = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)[:2]
    scope: dict[str, object] = {}
    exec(compile(first, "docs/clean-point.md", "exec"), scope)
    scope["check"] = scope["database_opens"]
    exec(compile(group, "docs/clean-point.md", "exec"), scope)
    result = scope["result"]
    assert isinstance(result, CleanPointResult)
    assert result.group("db01").clean is not None
    assert result.group("db01").clean.points["db01"].id == scope["points"][20].id  # type: ignore[index]
