"""Enlisted work that enlists more work in the same thread (a run started from a worker of another
run, as the clean-point search does) must not hold virtual time back forever."""

from __future__ import annotations

import threading

from vmfailover.clock import VirtualClock


def test_a_thread_holding_two_tickets_lets_time_jump_when_it_waits() -> None:
    clock = VirtualClock()
    outer = clock.enlist()
    finished: list[float] = []

    def work() -> None:
        with outer:
            inner = clock.enlist()
            with inner:
                clock.sleep(90)
                finished.append(clock.monotonic())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the nested tickets deadlocked virtual time"
    assert finished == [90.0]


def test_nested_work_and_a_second_worker_advance_in_order() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []
    first, second = clock.enlist(), clock.enlist()

    def nested() -> None:
        with first:
            with clock.enlist():
                clock.sleep(30)
                seen.append(("nested", clock.monotonic()))
            clock.sleep(30)
            seen.append(("outer", clock.monotonic()))

    def plain() -> None:
        with second:
            clock.sleep(45)
            seen.append(("plain", clock.monotonic()))

    threads = [threading.Thread(target=nested), threading.Thread(target=plain)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads)
    assert seen == [("nested", 30.0), ("plain", 45.0), ("outer", 60.0)]


def test_a_ticket_entered_twice_is_counted_once() -> None:
    clock = VirtualClock()
    ticket = clock.enlist()
    done = threading.Event()

    def work() -> None:
        with ticket, ticket:
            clock.sleep(5)
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert done.is_set()
    assert clock.monotonic() == 5.0
