"""The keeper keeps a lease renewed and fences work; a fenced backend acts only under the lease."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest

from vmfailover.backends.base import Backend
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli.demo import lab_start_order
from vmfailover.engine.fenced import MUTATING_OPERATIONS, FencedBackend
from vmfailover.engine.lease import Lease, LeaseLostError, LeaseUnavailableError
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.results import RunResult
from vmfailover.engine.runner import RetryPolicy, Runner
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.testing import lab

LeaseFactory = Callable[[], Lease]
READS = {"inventory", "recovery_points", "recovery_point_limit", "readiness"}


def mutating_calls(backend: MemoryBackend) -> dict[str, int]:
    return {
        op: count
        for op, count in backend.faults.per_operation.items()
        if op in MUTATING_OPERATIONS and count
    }


def test_a_keeper_holds_its_lease_over_many_lengths(lease_factory: LeaseFactory) -> None:
    lease, rival = lease_factory(), lease_factory()
    with LeaseKeeper(lease, "plan-1", ttl=0.6, holder="site-a") as keeper:
        first = keeper.token
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            keeper.check()
            assert rival.acquire("plan-1", "site-b", 30) is None
            time.sleep(0.1)
        assert keeper.token == first, "renewals keep the token"
        assert keeper.lost is None
    grant = rival.acquire("plan-1", "site-b", 30)
    assert grant is not None and grant.token.newer_than(first), "released at the end"
    with pytest.raises(LeaseLostError, match="released by its holder"):
        keeper.check()


def test_a_keeper_waits_for_the_previous_lease_to_expire(lease_factory: LeaseFactory) -> None:
    crashed = lease_factory().acquire("plan-1", "crashed-site", 0.5)
    assert crashed is not None
    began = time.monotonic()
    with LeaseKeeper(lease_factory(), "plan-1", ttl=5, acquire_timeout=10) as keeper:
        waited = time.monotonic() - began
        assert keeper.token.number == crashed.token.number + 1
    assert 0.3 <= waited < 5


def test_a_keeper_gives_up_after_its_acquire_timeout_naming_the_holder(
    lease_factory: LeaseFactory,
) -> None:
    assert lease_factory().acquire("plan-1", "site-a", 30) is not None
    keeper = LeaseKeeper(lease_factory(), "plan-1", ttl=5, acquire_timeout=0.3)
    with pytest.raises(ConflictError, match=r"still held by 'site-a' \(token 1\)"):
        keeper.acquire()


def test_a_lost_lease_stays_lost_and_fences_every_change(lease_factory: LeaseFactory) -> None:
    backend = lab()
    backend.faults.per_operation.clear()
    lease, rival = lease_factory(), lease_factory()
    keeper = LeaseKeeper(lease, "plan-1", ttl=30, holder="site-a")
    keeper.acquire()
    fenced = FencedBackend(backend, keeper)
    vm = next(v for v in backend.inventory().vms if v.name == "web01")
    fenced.power_off(vm.id)
    assert mutating_calls(backend) == {"power_off": 1}
    # Another site takes over behind the keeper's back (its lease released, a new holder).
    grant = keeper.grant
    assert grant is not None
    rival.release(grant)
    taken = rival.acquire("plan-1", "site-b", 30)
    assert taken is not None
    with pytest.raises(LeaseLostError, match="taken over by token 2"):
        fenced.power_on(vm.id)
    with pytest.raises(LeaseLostError):
        fenced.power_on(vm.id)
    assert isinstance(keeper.lost, LeaseLostError)
    assert mutating_calls(backend) == {"power_off": 1}, "nothing changed after the loss"
    assert fenced.readiness(vm.id).powered_on is False, "reads still pass"
    keeper.release()
    rival.check(taken.token)  # the keeper's release did not touch the new holder's lease


def test_the_fence_covers_every_call_of_the_backend_protocol() -> None:
    protocol = {
        name
        for name, member in inspect.getmembers(Backend)
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert protocol == READS | MUTATING_OPERATIONS, (
        "a new protocol call must be fenced (MUTATING_OPERATIONS) or listed as a read"
    )

    class Refusing:
        def check(self) -> None:
            raise LeaseLostError.__new__(LeaseLostError)

    backend = lab()
    fenced = FencedBackend(backend, Refusing())
    before = backend.faults.calls
    for name in sorted(MUTATING_OPERATIONS):
        method = getattr(fenced, name)
        arguments: list[Any] = [
            "x"
            for p in inspect.signature(method).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        with pytest.raises(LeaseLostError):
            method(*arguments)
    assert backend.faults.calls == before, "no refused call reached the backend"
    assert isinstance(fenced, Backend)
    assert fenced.clock is backend.clock
    with pytest.raises(AttributeError, match="inner"):
        fenced.fail_site  # noqa: B018 - the wrapped backend's own methods are not passed through


def test_a_runner_fails_over_through_the_fenced_backend(lease_factory: LeaseFactory) -> None:
    backend = lab()
    backend.clock.set_rate(2000)  # type: ignore[attr-defined]
    backend.fail_site("site-a")
    with LeaseKeeper(lease_factory(), "lab-plan", ttl=30) as keeper:
        runner = Runner(
            FencedBackend(backend, keeper),
            poll_interval=2.0,
            retry=RetryPolicy(attempts=4, initial_wait=0.5, max_wait=2),
        )
        report = runner.failover(lab_start_order())
    assert report.result is RunResult.SUCCEEDED, str(report)


def test_keeper_and_fence_refuse_bad_input(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    with pytest.raises(ValidationError, match="renew_every"):
        LeaseKeeper(lease, "plan-1", ttl=1, renew_every=1)
    with pytest.raises(ValidationError, match="needs a Lease"):
        LeaseKeeper(object(), "plan-1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="fence"):
        FencedBackend(lab(), object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="needs a Backend"):
        FencedBackend(object(), LeaseKeeper(lease, "plan-1"))  # type: ignore[arg-type]
    keeper = LeaseKeeper(lease, "plan-1")
    with pytest.raises(ConflictError, match="holds no lease yet"):
        keeper.check()


def test_a_locked_sqlite_file_makes_renewals_unavailable_not_lost(tmp_path: Any) -> None:
    import sqlite3

    from vmfailover.engine.lease_sqlite import SQLiteLease

    path = tmp_path / "lease.sqlite"
    lease = SQLiteLease(path, timeout=0.2)
    with LeaseKeeper(lease, "plan-1", ttl=30) as keeper:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the file's write lock
        try:
            grant = keeper.grant
            assert grant is not None
            with pytest.raises(LeaseUnavailableError, match="cannot renew"):
                lease.renew(grant)
            keeper.check()  # WAL: reads go on while another writes
            assert keeper.lost is None
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        keeper.check()
