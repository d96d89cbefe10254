"""Work the execution's pool never starts still lets virtual time move.

A crash of the orchestrator (``SimulatedCrash`` in tests, ``KeyboardInterrupt`` for real) shuts
the run's pool down with ``cancel_futures``. A VM's work is enlisted with the clock when it is
queued, so a queued item the shutdown cancels would hold virtual time back forever: a worker still
in a readiness wait on the virtual clock never woke, and the shutdown waited for it (a test of
journaled host failovers hung this way on a loaded machine). The execution releases the ticket of
every cancelled item.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from vmfailover.clock import VirtualClock
from vmfailover.engine.execution import _release_if_cancelled


def test_a_cancelled_queued_item_releases_its_ticket_so_a_sleeping_worker_wakes() -> None:
    clock = VirtualClock()
    pool = ThreadPoolExecutor(1)
    woke = threading.Event()
    # Enlisted when queued, as the execution does: before the worker's wait begins.
    sleeper_ticket, queued_ticket = clock.enlist(), clock.enlist()

    def sleeper() -> None:
        with sleeper_ticket:
            clock.sleep(60)  # a readiness poll: time waits for the queued item too
            woke.set()

    pool.submit(sleeper)
    queued = pool.submit(lambda: None)  # behind the sleeper: the pool has one thread
    queued.add_done_callback(_release_if_cancelled(queued_ticket))
    assert not woke.wait(0.2), "time moved while enlisted work was still to come"
    pool.shutdown(wait=False, cancel_futures=True)  # what a crash does
    assert queued.cancelled()
    assert woke.wait(5), "the sleeping worker never woke: the cancelled item held time back"
    pool.shutdown(wait=True)


def test_work_that_ran_keeps_its_ticket_for_itself() -> None:
    clock = VirtualClock()
    ticket = clock.enlist()
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(lambda: None)
        done.add_done_callback(_release_if_cancelled(ticket))
        done.result(5)
    # Not cancelled: the work's own ``with ticket`` releases it, not the callback.
    assert not ticket._released
    ticket.release()
