"""Fault hooks of a simulated host, and the WinRM faults it answers as Windows does.

A test arms a hook on ``host.faults`` and then drives the host with an ordinary client; each hook
produces what that client sees from a Windows host in the same situation:

* :meth:`FaultHooks.fail_next` with a :class:`~._objects.CmdletError`: the next call of that cmdlet
  fails with that error record (terminating or not, as the error says), nothing else changes;
* :meth:`FaultHooks.fail_next` with a :class:`WinRMFault` (default :data:`TRANSIENT`): the WinRM
  request that carries the pipeline is answered with that SOAP fault, HTTP 500, and the pipeline is
  not run (pypsrp raises ``WSManFaultError`` with the fault's ``code``);
* :meth:`FaultHooks.delay`: the cmdlet sleeps first (a client with a short operation timeout sees
  ``OperationTimeout`` faults on Receive meanwhile and keeps polling, as it does against Windows);
* :meth:`FaultHooks.drop_connection_after`: after ``n`` more answered requests the server closes
  the TCP connection of the next request without answering (a ``ConnectionError`` in requests);
* :meth:`FaultHooks.time_out_next_receive`: the next Receive is answered with the
  ``OperationTimeout`` fault at once;
* :meth:`FaultHooks.reject_auth`: requests are answered 401 (pypsrp raises ``AuthenticationError``).

Hooks are one-shot unless said otherwise; all are thread-safe.
"""

from __future__ import annotations

import threading

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number

from ._objects import CmdletError

__all__ = [
    "ACCESS_DENIED",
    "OPERATION_TIMEOUT",
    "SHELL_NOT_FOUND",
    "TRANSIENT",
    "FaultHooks",
    "WinRMFault",
]


@attrs.frozen
class WinRMFault:
    """A WS-Management fault as Windows sends it: numeric code, subcode and message."""

    code: int
    reason: str
    subcode: str = "w:InternalError"
    sender: bool = False


#: ``ERROR_WSMAN_OPERATION_TIMEDOUT``: Receive found nothing to return within OperationTimeout.
OPERATION_TIMEOUT = WinRMFault(
    0x80338029,
    "The WS-Management service cannot complete the operation within the time specified in "
    "OperationTimeout.",
    subcode="w:TimedOut",
)

#: The shell (runspace pool) or command the request names does not exist (any more).
SHELL_NOT_FOUND = WinRMFault(
    0x8033805B,
    "The request for the Windows Remote Shell with ShellId {id} failed because the shell was not "
    "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no "
    "longer exists on the server. Provide the correct ShellId or create a new shell and retry the "
    "operation.",
    subcode="w:InvalidSelectors",
    sender=True,
)

#: ``ERROR_ACCESS_DENIED``.
ACCESS_DENIED = WinRMFault(5, "Access is denied.", subcode="w:AccessDenied", sender=True)

#: A retryable fault: the service's per-user operation quota is exhausted for the moment.
TRANSIENT = WinRMFault(
    0x803381A6,
    "The WS-Management service cannot process the request. This user is allowed a maximum number "
    "of concurrent operations, which has been exceeded. Close existing operations for this user, "
    "or raise the quota for this user.",
    subcode="w:QuotaLimit",
)


def _key(cmdlet: str) -> str:
    if not isinstance(cmdlet, str) or not cmdlet.strip():
        raise ValidationError.of(
            "fault hook", f"cmdlet name {cmdlet!r} is empty", "name the cmdlet, e.g. 'Get-VM'"
        )
    return cmdlet.strip().lower()


class FaultHooks:
    """The hooks armed on one host; the server layers consult them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: dict[str, list[CmdletError | WinRMFault]] = {}
        self._delay: dict[str, float] = {}
        self._drop_after: int | None = None
        self._timeout_receives = 0
        self._reject_auth = 0
        self.fired: list[str] = []
        """What fired, in order (``"fail Get-VM"``, ``"drop"``, ``"receive-timeout"``...)."""

    # -- arming -------------------------------------------------------------------------------
    def fail_next(self, cmdlet: str, error: CmdletError | WinRMFault = TRANSIENT) -> None:
        """Fail the next call of ``cmdlet`` (case-insensitive) with ``error``; calls queue up."""
        if not isinstance(error, CmdletError | WinRMFault):
            raise ValidationError.of(
                "fault hook", f"{error!r} is not a CmdletError or WinRMFault", "pass one of those"
            )
        with self._lock:
            self._fail.setdefault(_key(cmdlet), []).append(error)

    def delay(self, cmdlet: str, seconds: float) -> None:
        """Make every call of ``cmdlet`` sleep ``seconds`` first, until :meth:`clear`."""
        if not is_finite_number(seconds) or not 0 <= seconds <= 3600:
            raise ValidationError.of(
                "fault hook", f"delay {seconds!r} is not a number of seconds", "use 0 to 3600"
            )
        with self._lock:
            self._delay[_key(cmdlet)] = float(seconds)

    def drop_connection_after(self, requests: int) -> None:
        """Answer ``requests`` more requests, then close the connection of the next unanswered."""
        if not isinstance(requests, int) or requests < 0:
            raise ValidationError.of(
                "fault hook", f"request count {requests!r} is not >= 0", "use an int >= 0"
            )
        with self._lock:
            self._drop_after = requests

    def time_out_next_receive(self, count: int = 1) -> None:
        """Answer the next ``count`` Receive requests with the OperationTimeout fault at once."""
        with self._lock:
            self._timeout_receives += count

    def reject_auth(self, count: int = 1_000_000) -> None:
        """Answer the next ``count`` requests 401 (default: until :meth:`clear`)."""
        with self._lock:
            self._reject_auth = count

    def clear(self) -> None:
        """Disarm every hook."""
        with self._lock:
            self._fail.clear()
            self._delay.clear()
            self._drop_after = None
            self._timeout_receives = 0
            self._reject_auth = 0

    # -- consulted by the server ----------------------------------------------------------------
    def take_failure(self, cmdlet: str) -> CmdletError | WinRMFault | None:
        with self._lock:
            queue = self._fail.get(cmdlet.strip().lower())
            if not queue:
                return None
            error = queue.pop(0)
            self.fired.append(f"fail {cmdlet}")
            return error

    def peek_winrm_failure(self, cmdlet: str) -> WinRMFault | None:
        """Take the armed failure for ``cmdlet`` only if it is a WinRM fault."""
        with self._lock:
            queue = self._fail.get(cmdlet.strip().lower())
            if not queue or not isinstance(queue[0], WinRMFault):
                return None
            self.fired.append(f"fail {cmdlet}")
            fault = queue.pop(0)
            assert isinstance(fault, WinRMFault)
            return fault

    def delay_for(self, cmdlet: str) -> float:
        with self._lock:
            return self._delay.get(cmdlet.strip().lower(), 0.0)

    def should_drop(self) -> bool:
        """Called once per request before answering it."""
        with self._lock:
            if self._drop_after is None:
                return False
            if self._drop_after == 0:
                self._drop_after = None
                self.fired.append("drop")
                return True
            self._drop_after -= 1
            return False

    def should_time_out_receive(self) -> bool:
        with self._lock:
            if self._timeout_receives <= 0:
                return False
            self._timeout_receives -= 1
            self.fired.append("receive-timeout")
            return True

    def should_reject_auth(self) -> bool:
        with self._lock:
            if self._reject_auth <= 0:
                return False
            self._reject_auth -= 1
            self.fired.append("reject-auth")
            return True
