"""Checks of a booted test copy: is this recovery point good?

A check is one of three things:

- a **callable**, given a :class:`BootedCopy` (the copy's id, its point, its readiness and
  addresses, the backend), returning ``True`` (good) or ``False`` (bad). It runs on a thread of its
  own, enlisted with the clock (so a check that waits on a virtual clock advances it), and must
  answer within the search's timeout;
- an **argv command** (never shell text), run with the copy's facts in ``VMFAILOVER_*``
  environment variables: exit status 0 is good, any other is bad; it is killed at the timeout;
- a **readiness probe** from :mod:`vmfailover.policy.probes`: the copy is good when the probe
  passes within its timeout (the driver hands it to the test failover as the VM's probe).

A check that raises, does not answer in time, returns something other than a bool or cannot be
started has not decided anything: the search stops with :class:`CleanPointError` (after removing
every copy), since a point it could not judge is neither good nor bad.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeAlias

import attrs

from vmfailover.backends.base import Backend, Readiness
from vmfailover.clock import Clock, Signal
from vmfailover.errors import ValidationError, VMFailoverError
from vmfailover.model import IPAddress, RecoveryPoint
from vmfailover.policy.probes import PROBE_TYPES, Probe

__all__ = [
    "BootedCopy",
    "Check",
    "CheckAnswer",
    "CheckFunction",
    "CleanPointError",
    "checks_for",
    "run_check",
]

CheckFunction: TypeAlias = Callable[["BootedCopy"], bool]
"""A check written in Python: given the booted copy, True when its point is good."""

Check: TypeAlias = CheckFunction | Sequence[str] | Probe
"""A callable, an argv command, or a readiness probe."""

#: How much of a failing command's output a verdict keeps.
_OUTPUT_LINE = 300


class CleanPointError(VMFailoverError):
    """The clean-point search could not judge a point (its check raised, timed out, answered
    something other than True or False, or the test copy could not be made); the search stopped
    and its test copies were removed."""


@attrs.frozen
class BootedCopy:
    """What a check receives: a test copy of one VM at one recovery point, booted and ready on
    an isolated test network.

    ``vm`` is the VM as the search was given it (name or id), ``vm_id`` the test copy's id,
    ``point`` its recovery point and ``moment`` the moment the search is judging (for a group,
    every VM's point is its newest at or before it). ``readiness`` is what the backend reported
    once the copy was ready; ``addresses`` the addresses its guest reports.
    """

    vm: str
    vm_id: str
    point: RecoveryPoint
    moment: datetime
    readiness: Readiness
    backend: Backend = attrs.field(repr=False)

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        return self.readiness.ip_addresses

    def environment(self) -> dict[str, str]:
        """The facts a command check finds in its environment."""
        return {
            "VMFAILOVER_VM": self.vm,
            "VMFAILOVER_VM_ID": self.vm_id,
            "VMFAILOVER_POINT": self.point.id,
            "VMFAILOVER_POINT_TIME": self.point.created_at.isoformat(),
            "VMFAILOVER_MOMENT": self.moment.isoformat(),
            "VMFAILOVER_ADDRESSES": " ".join(str(a) for a in self.addresses),
        }


@attrs.frozen
class CheckAnswer:
    """A check's answer on one copy: ``passed``, and why in words."""

    passed: bool
    reason: str


def checks_for(
    check: object, vms: Sequence[str]
) -> dict[str, CheckFunction | tuple[str, ...] | Probe | None]:
    """Each VM's check, validated where it enters: one check for all, or a mapping VM -> check
    (VMs it leaves out are judged by booting to readiness alone)."""
    if isinstance(check, Mapping):
        unknown = [vm for vm in check if vm not in vms]
        if unknown:
            raise ValidationError.of(
                f"check for VM {unknown[0]!r}",
                "names a VM that is not searched",
                f"the VMs searched: {', '.join(vms)}",
            )
        return {
            vm: _one_check(check[vm], f"check for VM {vm!r}") if vm in check else None for vm in vms
        }
    one = _one_check(check, "check")
    return dict.fromkeys(vms, one)


def _one_check(check: object, item: str) -> CheckFunction | tuple[str, ...] | Probe:
    if isinstance(check, PROBE_TYPES):
        return check  # type: ignore[return-value]
    if isinstance(check, str | bytes):
        raise ValidationError.of(
            item,
            f"{check!r} is text: give a command as an argv list, never shell text",
            'for example ["/usr/local/bin/check-db", "--quick"]',
        )
    if callable(check):
        return check
    if isinstance(check, Sequence):
        argv = tuple(check)
        if argv and all(isinstance(part, str) and part for part in argv):
            return argv
        raise ValidationError.of(
            item, f"a command must be a non-empty list of strings, got {check!r}"
        )
    raise ValidationError.of(
        item,
        f"{check!r} is not a check",
        "give a callable taking a BootedCopy, an argv list, or a probe such as TCPPort(5432)",
    )


def run_check(
    check: CheckFunction | tuple[str, ...],
    copy: BootedCopy,
    *,
    clock: Clock,
    timeout: float,
    wake: Signal,
) -> CheckAnswer | None:
    """Run ``check`` on ``copy`` within ``timeout`` seconds; None if ``wake`` was set from outside
    first (the search was cancelled). Raises :class:`CleanPointError` when the check decides
    nothing; other exceptions of a callable (KeyboardInterrupt) pass through."""
    if isinstance(check, tuple):
        return _run_command(check, copy, timeout)
    return _run_callable(check, copy, clock=clock, timeout=timeout, wake=wake)


def _run_command(argv: tuple[str, ...], copy: BootedCopy, timeout: float) -> CheckAnswer:
    what = f"check {argv[0]!r} on {copy.vm} at {copy.point.id}"
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, **copy.environment()},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CleanPointError(f"{what} did not finish within {timeout:g} s (killed)") from None
    except OSError as error:
        raise CleanPointError(f"{what} could not start: {error.strerror or error}") from None
    if done.returncode == 0:
        return CheckAnswer(True, "the check passed")
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    said = f": {lines[-1][:_OUTPUT_LINE]}" if lines else ""
    return CheckAnswer(False, f"the check exited with status {done.returncode}{said}")


def _run_callable(
    check: CheckFunction, copy: BootedCopy, *, clock: Clock, timeout: float, wake: Signal
) -> CheckAnswer | None:
    answers: list[object] = []
    errors: list[BaseException] = []
    ticket = clock.enlist()

    def call() -> None:
        with ticket:
            try:
                answers.append(check(copy))
            except BaseException as error:  # handed to the search, which stops on it
                errors.append(error)
            finally:
                wake.set()

    name = getattr(check, "__name__", None) or repr(check)
    thread = threading.Thread(target=call, name=f"vmfailover-check-{copy.vm_id}", daemon=True)
    thread.start()
    deadline = clock.monotonic() + timeout
    while not answers and not errors:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise CleanPointError(
                f"check {name} on {copy.vm} at {copy.point.id} did not answer within "
                f"{timeout:g} s (abandoned)"
            )
        if clock.wait(wake, left) and not answers and not errors:
            return None  # woken from outside: the search was cancelled
    if errors:
        error = errors[0]
        if not isinstance(error, Exception):
            raise error
        raise CleanPointError(
            f"check {name} on {copy.vm} at {copy.point.id} raised {type(error).__name__}: {error}"
        ) from error
    answer = answers[0]
    if not isinstance(answer, bool):
        raise CleanPointError(
            f"check {name} on {copy.vm} at {copy.point.id} returned {answer!r}: "
            "a check returns True (good) or False (bad)"
        )
    return CheckAnswer(answer, "the check passed" if answer else f"{name}() returned False")
