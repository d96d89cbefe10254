"""One Hyper-V host over PowerShell Remoting: a reused runspace pool, bounded waits, retries.

:class:`HostSession` owns the pypsrp ``WSMan`` connection and the one ``RunspacePool`` it reuses
for every pipeline to its host (opening a pool costs several round trips and a runspace on the
host; a pipeline on an open pool costs about three). Pipelines to one host run one at a time (a
pypsrp pool is not safe to share between threads); hosts run in parallel.

Every wait is bounded: each HTTP request by ``connect_timeout``/``read_timeout``, each Receive by
WinRM's ``operation_timeout``, and a whole pipeline, retries included, by ``pipeline_timeout``
(or the caller's), enforced from outside pypsrp so that no server behaviour can hold the caller
longer. Transport failures a new connection may cure (a dropped connection, a pool the host
forgot, a busy WinRM service) are retried a few times on a fresh pool; every pipeline the backend
sends may be repeated, because each backend operation reconciles with what it reads. An
authentication or TLS failure is not retried: it ends at once in a
:class:`~vmfailover.errors.PermanentBackendError` that names the user, never the secret.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, cast

import attrs
import requests
import tenacity
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPipelineStateError,
    InvalidRunspacePoolStateError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from vmfailover.errors import PermanentBackendError, TransientBackendError

from .config import HostConnection
from .errors import ErrorRecord, to_error
from .pipeline import Pipeline, Switch
from .values import plain

__all__ = ["HostSession", "PipelineResult"]

#: WS-Management fault codes a retry on a fresh pool may cure.
_TRANSIENT_FAULTS = frozenset(
    {
        0x8033805B,  # the shell (runspace pool) is gone on the host
        0x803381A6,  # the user's concurrent operations quota is exhausted
        0x80338029,  # OperationTimeout outside a Receive
        0x803381A4,  # the maximum number of shells is reached
    }
)


@attrs.frozen
class PipelineResult:
    """What a pipeline wrote: output (plain values) and error records, in order."""

    output: tuple[Any, ...]
    errors: tuple[ErrorRecord, ...]


class _Retryable(Exception):
    """A transport failure worth another try on a fresh pool."""


class _Stuck(Exception):
    """The pipeline did not end within its time."""


class HostSession:
    """The connection to one Hyper-V host, and the only place its pipelines are sent from."""

    def __init__(
        self, connection: HostConnection, *, attempts: int = 3, retry_wait: float = 0.2
    ) -> None:
        self.connection = connection
        self.attempts = attempts
        self.retry_wait = retry_wait
        self._lock = threading.Lock()
        self._wsman: Any = None
        self._pool: Any = None
        self._generation = 0
        self.pipelines_sent = 0
        """Pipelines sent to the host (each retry counts): what benchmarks count."""
        self.pools_opened = 0

    @property
    def name(self) -> str:
        return self.connection.name

    # -- the public surface -----------------------------------------------------------------------
    def run(self, pipeline: Pipeline, *, timeout: float | None = None) -> PipelineResult:
        """Run ``pipeline``; transport failures raise, error records come back in the result."""
        budget = timeout if timeout is not None else self.connection.pipeline_timeout
        deadline = time.monotonic() + budget
        with self._lock:
            retrying = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(_Retryable),
                stop=tenacity.stop_after_attempt(self.attempts)
                | tenacity.stop_before_delay(max(budget - self.retry_wait, 0)),
                wait=tenacity.wait_exponential(multiplier=self.retry_wait, max=2.0),
                reraise=True,
            )
            try:
                return retrying(self._attempt, pipeline, deadline)
            except _Retryable as failure:
                raise TransientBackendError(
                    f"{self.name}: {pipeline.description}: {failure} "
                    f"(tried {self.attempts} times on fresh connections)"
                ) from failure.__cause__
            except _Stuck as failure:
                raise TransientBackendError(
                    f"{self.name}: {pipeline.description}: {failure}"
                ) from None

    def run_checked(self, pipeline: Pipeline, *, timeout: float | None = None) -> tuple[Any, ...]:
        """Run ``pipeline``; any error record, terminating or not, raises our error for it."""
        result = self.run(pipeline, timeout=timeout)
        if result.errors:
            raise to_error(result.errors[0], self.name, pipeline.description)
        return result.output

    def close(self) -> None:
        """Close the runspace pool and the connection (idempotent)."""
        with self._lock:
            self._discard(graceful=True)

    # -- one attempt ------------------------------------------------------------------------------
    def _attempt(self, pipeline: Pipeline, deadline: float) -> PipelineResult:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Stuck(f"no answer within {self.connection.pipeline_timeout:g} s")
        self.pipelines_sent += 1
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = self._invoke(pipeline, deadline)
            except BaseException as error:  # handed to the waiting caller
                box["error"] = error
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"vmfailover-hyperv-{self.name}", daemon=True)
        worker.start()
        if not done.wait(remaining):
            # pypsrp is still blocked in a request: leave it to its own read timeout, on a
            # connection nobody will use again.
            self._discard(graceful=False)
            raise _Stuck(f"no answer within {remaining:.3g} s; the connection was dropped")
        if "error" in box:
            raise self._classify(box["error"], pipeline)
        return cast(PipelineResult, box["result"])

    def _invoke(self, pipeline: Pipeline, deadline: float) -> PipelineResult:
        pool = self._open_pool()
        shell = PowerShell(pool)
        for index, statement in enumerate(pipeline.statements):
            if index:
                shell.add_statement()
            for command in statement:
                shell.add_cmdlet(command.name)
                for name, value in command.parameters:
                    if isinstance(value, Switch):
                        shell.add_parameter(name)
                    else:
                        shell.add_parameter(name, value)
        shell.begin_invoke()
        while shell.state == PSInvocationState.RUNNING:
            left = deadline - time.monotonic()
            if left <= 0:
                shell.stop()
                raise _Stuck(f"still running after {self.connection.pipeline_timeout:g} s")
            shell.poll_invoke(timeout=max(1, min(self.connection.operation_timeout, int(left))))
        output = tuple(plain(item) for item in shell.output)
        errors = tuple(ErrorRecord.from_pypsrp(record) for record in shell.streams.error)
        shell.close()
        return PipelineResult(output, errors)

    def _open_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        generation = self._generation
        c = self.connection
        verify: bool | str = c.ca_file if (c.verify_tls and c.ca_file) else c.verify_tls
        credentials = c.credentials
        wsman = WSMan(
            c.endpoint_address,
            port=c.endpoint_port,
            ssl=c.tls,
            auth=c.auth,
            username=credentials.username if credentials else None,
            password=credentials.secret.reveal() if credentials else None,
            cert_validation=cast(Any, verify),  # a CA file path is what requests' verify takes
            encryption=c.encryption,
            operation_timeout=c.operation_timeout,
            read_timeout=c.read_timeout,
            connection_timeout=cast(Any, c.connect_timeout),
            reconnection_retries=0,
            reconnection_backoff=0.1,
        )
        pool = RunspacePool(wsman, configuration_name=c.configuration_name)
        pool.open()
        self.pools_opened += 1
        if generation == self._generation:  # not abandoned meanwhile (see _attempt)
            self._pool, self._wsman = pool, wsman
        return pool

    def _discard(self, *, graceful: bool) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = self._wsman = None
        self._generation += 1
        if graceful and pool is not None:
            # the host may be gone already; the connection is closed below all the same
            with contextlib.suppress(Exception):
                pool.close()
        if wsman is not None:
            with contextlib.suppress(Exception):
                wsman.close()

    # -- what went wrong --------------------------------------------------------------------------
    def _classify(self, error: BaseException, pipeline: Pipeline) -> BaseException:
        """Turn a failure of pypsrp/requests into ours, or into a retry on a fresh pool."""
        if isinstance(error, _Stuck):
            return error
        who = self.connection.credentials.username if self.connection.credentials else "(ticket)"
        doing = pipeline.description
        if isinstance(error, AuthenticationError):
            self._discard(graceful=False)
            return PermanentBackendError(
                f"{self.name}: {doing}: authentication failed for user {who!r} "
                f"({self.connection.auth}); check the credentials and the host's WinRM auth "
                "settings"
            )
        if isinstance(error, requests.exceptions.SSLError):
            self._discard(graceful=False)
            return PermanentBackendError(
                f"{self.name}: {doing}: TLS verification of "
                f"{self.connection.endpoint_address}:{self.connection.endpoint_port} failed "
                f"({_first_line(error)}); pin the host's certificate with ca_file"
            )
        retry: _Retryable | None = None
        if isinstance(error, requests.exceptions.RequestException):
            retry = _Retryable(f"connection failed: {_first_line(error)}")
        elif isinstance(error, WSManFaultError):
            if error.code in _TRANSIENT_FAULTS:
                retry = _Retryable(f"WinRM fault {error.code:#x}: {_first_line(error)}")
            else:
                self._discard(graceful=False)
                return PermanentBackendError(
                    f"{self.name}: {doing}: WinRM fault {error.code:#x}: {error.reason}"
                )
        elif isinstance(error, WinRMTransportError) and error.code >= 500:
            retry = _Retryable(f"HTTP {error.code} from WinRM")
        elif isinstance(error, InvalidPipelineStateError | InvalidRunspacePoolStateError):
            retry = _Retryable(f"the runspace pool broke: {_first_line(error)}")
        if retry is None:
            self._discard(graceful=False)
            return PermanentBackendError(
                f"{self.name}: {doing}: {type(error).__name__}: {_first_line(error)}"
            )
        self._discard(graceful=False)
        retry.__cause__ = error
        return retry


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
