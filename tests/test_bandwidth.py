"""Bandwidth limits: parsing, the token bucket's bound, and the data path that honours it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import Bandwidth, TokenBucket, ValidationError, VirtualClock
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


def test_a_wait_longer_than_max_wait_fails_fast() -> None:
    clock = VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
    bucket = TokenBucket(Bandwidth(1000.0), clock, max_wait=10)
    with pytest.raises(Exception, match="would wait"):
        bucket.consume(100 * MIB)
    assert clock.monotonic() == 0.0


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
