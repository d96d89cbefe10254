"""Bandwidth limits: parsing, the token bucket's bound, and the data path that honours it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import (
    Bandwidth,
    PermanentBackendError,
    TokenBucket,
    TransientBackendError,
    ValidationError,
    VirtualClock,
)
from vmfailover.backends.memory import BLOCK_SIZE
from vmfailover.testing import lab

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("50MB/s", 50e6),
        ("50 MB/s", 50e6),
        ("100MiB/s", 100 * MIB),
        ("400Mbit/s", 50e6),
        ("400Mbps", 50e6),
        ("1Gbps", 125e6),
        ("1.5GB/s", 1.5e9),
        ("512KiB/s", 512 * 1024),
        ("20MBps", 20e6),
    ],
)
def test_rates_parse(text: str, rate: float) -> None:
    assert Bandwidth.parse(text).bytes_per_second == pytest.approx(rate)


@pytest.mark.parametrize(
    "value",
    ["0MB/s", "fast", "50MB", "50 furlongs/s", "-5MB/s", float("nan"), float("inf"), 0, True],
)
def test_bad_rates_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Bandwidth.parse(value, "job 'x': bandwidth")
    assert caught.value.findings[0].item == "job 'x': bandwidth"


def test_the_burst_is_one_second_and_at_least_one_block() -> None:
    assert Bandwidth.parse("50MB/s").burst_bytes == 50_000_000
    assert Bandwidth.parse("100KB/s").burst_bytes == MIB
    assert Bandwidth(1000.0, burst_bytes=5 * MIB).burst_bytes == 5 * MIB
    assert str(Bandwidth.parse("50MB/s")) == "50 MB/s"


def _moves(chunks: list[int], bandwidth: Bandwidth) -> list[tuple[float, int]]:
    """Consume each chunk on a virtual clock; (clock time when it moves, bytes)."""
    clock = VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(bandwidth, clock)
    moves = []
    for chunk in chunks:
        bucket.consume(chunk)
        moves.append((clock.monotonic(), chunk))
    return moves


@given(
    st.lists(st.integers(min_value=1, max_value=4 * MIB), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=200).map(lambda mb: mb * 10**5),
)
def test_over_any_window_no_more_than_the_limit_times_the_window_plus_one_burst(
    chunks: list[int], rate: int
) -> None:
    bandwidth = Bandwidth(float(rate), burst_bytes=4 * MIB)
    moves = _moves(chunks, bandwidth)
    # The tightest windows start and end at moves.
    for i, (start, _) in enumerate(moves):
        moved = 0
        for end, size in moves[i:]:
            moved += size
            assert moved <= rate * (end - start) + bandwidth.burst_bytes + 1e-6 * rate


def test_an_idle_bucket_lets_one_burst_through_at_once() -> None:
    moves = _moves([MIB] * 10, Bandwidth(float(MIB), burst_bytes=4 * MIB))
    assert [at for at, _ in moves[:4]] == [0.0] * 4
    assert moves[-1][0] == pytest.approx(6.0)


def test_a_limit_too_low_for_one_chunk_fails_for_good_once_the_burst_is_spent() -> None:
    """At 100 B/s a 1 MiB chunk takes 10,486 s: the first passes on the full bucket's burst,
    the next would wait that long, and so would every retry: a permanent error, at once."""
    clock = VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(Bandwidth(100.0), clock, max_wait=3600)
    bucket.consume(MIB)
    with pytest.raises(PermanentBackendError) as refused:
        bucket.consume(MIB)
    assert str(refused.value) == (
        "bandwidth limit 100 B/s: a chunk of 1048576 bytes takes 10486 s at this limit, longer "
        "than 3600 s: raise the limit or move smaller chunks"
    )
    assert (clock.monotonic(), bucket.consumed, bucket.waited) == (0.0, MIB, 0.0)


class _GrantedStillWaiting(VirtualClock):
    """A clock on which a granted chunk's wait never ends within the test: the grants pile up
    as they do on a shared bucket whose transfers are all still waiting their turn."""

    def sleep(self, seconds: float) -> None:
        self.slept = getattr(self, "slept", 0.0) + seconds


def test_a_chunk_queued_too_long_behind_others_fails_for_now() -> None:
    """On a shared bucket a chunk that fits waits for the transfers granted before it; past
    max_wait that is a transient failure (the queue drains), not a permanent one."""
    clock = _GrantedStillWaiting(datetime(2024, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(Bandwidth(float(MIB), burst_bytes=MIB), clock, max_wait=10)
    for _ in range(11):  # eleven transfers granted: 10 MiB more than the bucket held
        bucket.consume(MIB)
    with pytest.raises(TransientBackendError, match="behind transfers granted before them"):
        bucket.consume(MIB)  # it would wait 11 s
    assert bucket.consumed == 11 * MIB
    clock.advance(5.0)  # half the debt has refilled: the same chunk now waits 6 s, and passes
    bucket.consume(MIB)
    assert bucket.consumed == 12 * MIB
    assert bucket.waited == pytest.approx(sum(range(11)) + 6.0)


def test_the_memory_backend_pays_for_each_block_it_moves() -> None:
    backend = lab(start=datetime(2024, 6, 3, tzinfo=UTC))
    replica = backend.inventory().replica_of("db01")
    paid: list[int] = []

    class Recorder:
        def consume(self, nbytes: int) -> None:
            paid.append(nbytes)

    point = backend.sync(replica.id, throttle=Recorder())
    assert point.size_bytes > 0
    assert paid == [BLOCK_SIZE] * (point.size_bytes // BLOCK_SIZE)


def test_an_unlimited_sync_takes_no_time() -> None:
    backend = lab(start=datetime(2024, 6, 3, tzinfo=UTC))
    before = backend.clock.now()
    point = backend.sync(backend.inventory().replica_of("db01").id)
    assert point.size_bytes > 0
    assert backend.clock.now() == before
