"""Retention on 1,000,000 recovery points with every rule enabled, against sorting them.

The engine is a sort plus a few linear passes. Two sorts of the same shuffled points, newest first,
run in the same process as baselines, and the ratio to each is printed:

- sorting the recovery points by their datetime (``sorted(points, key=created_at)``), what a
  caller without vmfailover would write. Target: apply / this sort <= 3.
- apply's own sort: the points' positions ordered by their float timestamps (floats compare
  much faster than datetimes), so this ratio shows what apply does around its sort. For
  information: reading a million timestamps out of a million objects is part of apply and not of
  this sort, so the ratio is well above the first.

Also printed: the same for plain datetimes, for points that arrive already in time order (where
the sort is nearly free, so the ratio is not the target), and the peak memory of one apply
(tracemalloc, measured in a separate run because tracing slows everything down). The script exits
non-zero when it misses its target.

Run from the worktree root: ``python benchmarks/bench_retention.py``.
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized

from vmfailover.model import RecoveryPoint
from vmfailover.policy.retention import RetentionPolicy

N = sized(1_000_000, 3_000)
TARGET = 3.0
REPEATS = sized(5, 1)
#: Every this many points one is pinned (the smoke run's few points still hold one).
PINNED_EVERY = sized(100_000, 1_000)

POLICY = RetentionPolicy(
    last=3,
    hourly=24,
    daily=7,
    weekly=4,
    monthly=12,
    yearly=-1,
    within="2d",
    within_hourly="1d",
    within_daily="7d",
    within_weekly="1m",
    within_monthly="1y",
    within_yearly="10y",
    tags=[["tested"], ["app-consistent", "weekly"]],
    tz="Europe/Berlin",
)


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def make_points(now: datetime) -> list[RecoveryPoint]:
    """One point every 5 minutes for ~9.5 years (Berlin DST changes included), some tagged."""
    rng = random.Random(42)
    start = now - timedelta(minutes=5 * N)
    points = []
    for number in range(N):
        created = start + timedelta(minutes=5 * number, seconds=rng.randrange(60))
        tags = ("tested",) if number % 288 == 0 else ()
        pinned = now + timedelta(days=1) if number % PINNED_EVERY == 0 else None
        points.append(
            RecoveryPoint(
                id=f"rp{number}", replica="r1", created_at=created, tags=tags, pinned_until=pinned
            )
        )
    return points


def compare(
    label: str,
    points: list[RecoveryPoint] | list[datetime],
    now: datetime,
    baseline: Callable[[], object] | None = None,
) -> float:
    """Best of a few runs each, sort and apply interleaved so machine load hits both alike.

    The baseline is sorting ``points`` newest first by instant unless another is given.
    """
    if baseline is None:
        key = attrgetter("created_at") if isinstance(points[0], RecoveryPoint) else None

        def baseline() -> object:
            return sorted(points, key=key, reverse=True)

    sort_times, apply_times = [], []
    for _ in range(REPEATS):
        sort_times.append(timed(baseline))
        apply_times.append(timed(lambda: POLICY.apply(points, now=now)))
    sort_time, apply_time = min(sort_times), min(apply_times)
    ratio = apply_time / sort_time
    print(f"{label}: sort {sort_time:.3f} s, apply {apply_time:.3f} s, ratio {ratio:.2f}")
    return ratio


def main() -> int:
    announce()
    now = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    print(f"building {N:,} recovery points ...", flush=True)
    ordered = make_points(now)
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    decision = POLICY.apply(shuffled, now=now)
    print(f"policy: {POLICY}")
    print(f"kept {len(decision.keep):,}, removed {len(decision.remove):,}")

    ratio = compare("recovery points, shuffled, against sorting them by datetime", shuffled, now)
    stamps = [point.created_at.timestamp() for point in shuffled]
    float_ratio = compare(
        "recovery points, shuffled, against sorting by float timestamp (apply's own sort)",
        shuffled,
        now,
        baseline=lambda: sorted(range(len(stamps)), key=stamps.__getitem__, reverse=True),
    )
    compare("datetimes, shuffled", [point.created_at for point in shuffled], now)
    compare("recovery points, already in time order (sort nearly free)", ordered, now)

    gc.collect()
    tracemalloc.start()
    POLICY.apply(shuffled, now=now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory of one apply: {peak / 2**20:.1f} MiB ({peak / N:.0f} bytes per point)")

    verdict = judged(ratio <= TARGET)
    print(
        f"{verdict}: apply / sort by datetime = {ratio:.2f} on shuffled recovery points "
        f"(target <= {TARGET}); apply / its own float sort = {float_ratio:.2f} "
        "(for information)"
    )
    return exit_code(ratio <= TARGET)


if __name__ == "__main__":
    raise SystemExit(main())
