"""The lease's promises, the same for SQLite and PostgreSQL (each test runs on both stores)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import pytest

from vmfailover.engine.lease import (
    FencingToken,
    Lease,
    LeaseGrant,
    LeaseLostError,
    LeaseUnavailableError,
)
from vmfailover.errors import ValidationError

LeaseFactory = Callable[[], Lease]


def test_first_holder_gets_token_one_and_others_wait(lease_factory: LeaseFactory) -> None:
    site_a, site_b = lease_factory(), lease_factory()
    grant = site_a.acquire("plan-1", "site-a", 30)
    assert grant is not None
    assert grant.token == FencingToken("plan-1", 1)
    assert site_b.acquire("plan-1", "site-b", 30) is None
    state = site_b.state("plan-1")
    assert state is not None and state.held and state.holder == "site-a"
    assert state.token == grant.token
    site_b.check(grant.token)  # anyone may ask whether a token is current


def test_a_holder_cannot_acquire_twice_it_renews(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    grant = lease.acquire("plan-1", "site-a", 30)
    assert grant is not None
    assert lease.acquire("plan-1", "site-a", 30) is None
    renewed = lease.renew(grant)
    assert renewed.token == grant.token
    assert renewed.expires_at >= grant.expires_at
    assert renewed.deadline >= grant.deadline


def test_release_hands_over_with_a_higher_token(lease_factory: LeaseFactory) -> None:
    site_a, site_b = lease_factory(), lease_factory()
    first = site_a.acquire("plan-1", "site-a", 30)
    assert first is not None
    site_a.release(first)
    site_a.release(first)  # idempotent
    second = site_b.acquire("plan-1", "site-b", 30)
    assert second is not None and second.token.newer_than(first.token)
    with pytest.raises(LeaseLostError, match="taken over by token 2"):
        site_a.check(first.token)
    site_a.release(first)  # a lost grant's release leaves the new holder's lease alone
    site_b.check(second.token)


def test_expiry_hands_the_lease_over_and_the_old_token_is_refused(
    lease_factory: LeaseFactory,
) -> None:
    site_a, site_b = lease_factory(), lease_factory()
    old = site_a.acquire("plan-1", "site-a", 0.3)
    assert old is not None
    assert site_b.acquire("plan-1", "site-b", 30) is None
    time.sleep(0.4)
    new = site_b.acquire("plan-1", "site-b", 30)
    assert new is not None and new.token.number == old.token.number + 1
    with pytest.raises(LeaseLostError, match=r"taken over by token 2 \(holder 'site-b'\)") as lost:
        site_a.check(old.token)
    assert lost.value.token == old.token
    with pytest.raises(LeaseLostError, match="taken over"):
        site_a.renew(old)
    state = site_a.state("plan-1")
    assert state is not None and state.holder == "site-b" and state.held


def test_an_expired_lease_is_lost_even_when_nobody_took_it(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    grant = lease.acquire("plan-1", "site-a", 0.2)
    assert grant is not None
    time.sleep(0.3)
    with pytest.raises(LeaseLostError, match="expired"):
        lease.check(grant.token)
    with pytest.raises(LeaseLostError, match="expired"):
        lease.renew(grant)
    again = lease.acquire("plan-1", "site-a", 30)
    assert again is not None and again.token.newer_than(grant.token)


def test_tokens_never_go_back_through_many_tenures(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    numbers = []
    for turn in range(10):
        grant = lease.acquire("plan-1", f"holder-{turn}", 30)
        assert grant is not None
        numbers.append(grant.token.number)
        lease.release(grant)
    assert numbers == list(range(1, 11))
    other = lease.acquire("plan-2", "holder", 30)
    assert other is not None and other.token.number == 1, "each plan counts its own tokens"


def test_the_local_deadline_is_never_after_the_store_expiry(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    before = lease.clock.monotonic()
    grant = lease.acquire("plan-1", "site-a", 10)
    assert grant is not None
    assert before + 10 * 0.99 <= grant.deadline <= before + 10
    assert grant.deadline <= lease.clock.monotonic() + 10


def _race(contenders: list[Lease], plan: str) -> list[LeaseGrant]:
    """Every contender tries to acquire at the same moment (a barrier); the grants won."""
    start = threading.Barrier(len(contenders))
    grants: list[LeaseGrant | None] = [None] * len(contenders)

    def contend(index: int) -> None:
        start.wait(timeout=30)
        grants[index] = contenders[index].acquire(plan, f"holder-{index}", 30)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [grant for grant in grants if grant is not None]


def test_racing_holders_exactly_one_wins_every_round(lease_factory: LeaseFactory) -> None:
    contenders = [lease_factory() for _ in range(6)]
    tokens: list[int] = []
    for round_number in range(8):
        winners = _race(contenders, "raced")
        assert len(winners) == 1, f"round {round_number}: {len(winners)} winners"
        tokens.append(winners[0].token.number)
        contenders[0].release(winners[0])
    assert tokens == list(range(1, 9)), "every round's token is the next number"


@pytest.mark.parametrize(
    "ttl", [0, -1, 0.01, math.nan, math.inf, 86_401, True, "30", None], ids=repr
)
def test_bad_lease_lengths_are_refused(lease_factory: LeaseFactory, ttl: object) -> None:
    with pytest.raises(ValidationError, match="lease ttl"):
        lease_factory().acquire("plan-1", "site-a", ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "x" * 201, "tab\there", None, 7], ids=repr)
def test_bad_plan_and_holder_names_are_refused(lease_factory: LeaseFactory, name: object) -> None:
    lease = lease_factory()
    with pytest.raises(ValidationError, match="lease plan"):
        lease.acquire(name, "site-a", 30)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="lease holder"):
        lease.acquire("plan-1", name, 30)  # type: ignore[arg-type]


def test_checks_need_tokens_and_renewals_need_grants(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    with pytest.raises(ValidationError, match="FencingToken"):
        lease.check(1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="LeaseGrant"):
        lease.renew(FencingToken("plan-1", 1))  # type: ignore[arg-type]
    with pytest.raises(LeaseLostError, match="no lease"):
        lease.check(FencingToken("never-leased", 1))
    with pytest.raises(ValidationError, match="whole number"):
        FencingToken("plan-1", 0)
    with pytest.raises(ValidationError, match="do not compare"):
        FencingToken("a", 2).newer_than(FencingToken("b", 1))


def test_a_token_newer_than_the_store_knows_is_refused(lease_factory: LeaseFactory) -> None:
    lease = lease_factory()
    grant = lease.acquire("plan-1", "site-a", 30)
    assert grant is not None
    with pytest.raises(LeaseLostError, match="older than this one"):
        lease.check(FencingToken("plan-1", grant.token.number + 5))


def test_lease_errors_are_ours_and_say_what_to_do() -> None:
    lost = LeaseLostError(FencingToken("plan-1", 3), "it expired")
    assert "plan 'plan-1'" in str(lost) and "must not act" in str(lost)
    unavailable = LeaseUnavailableError("plan-1", "check", "connection refused")
    assert "cannot check the lease on plan 'plan-1'" in str(unavailable)
