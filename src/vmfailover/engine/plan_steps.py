"""Running a plan's pre- and post-steps, and holding its approval gates.

A step is a callable or an argv command. Commands run without a shell, with the run's facts in
their environment (:meth:`~vmfailover.plan.StepContext.environment`), their output captured and
cut to a bounded tail, and are killed when their timeout passes. Callables run on a thread of
their own so that a timeout can be enforced; one that overruns is abandoned (Python cannot kill a
thread) and reported. A callable fails by raising or by returning ``False``. Steps run in real
time whatever the run's clock, since they do real work.

An approval gate waits, also in real time, for ``run.approve(name)`` or its approver's answer.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

import attrs

from vmfailover.errors import ConflictError, NotFoundError
from vmfailover.plan.steps import Approval, ApprovalRequest, Step, StepContext

__all__ = ["ApprovalGates", "StepOutcome", "run_step"]

logger = logging.getLogger("vmfailover.steps")

#: How much of a command's output a report keeps.
OUTPUT_TAIL = 2_000


@attrs.frozen
class StepOutcome:
    """How a step ended: ``error`` is None when it succeeded; ``output`` is a bounded tail."""

    error: str | None = None
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def run_step(step: Step, context: StepContext) -> StepOutcome:
    """Run ``step`` once, bounded by its timeout; never raises for the step's own failures."""
    if step.command is not None:
        return _run_command(step, step.command, context)
    return _run_callable(step, context)


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]


def _run_command(step: Step, argv: tuple[str, ...], context: StepContext) -> StepOutcome:
    env = {**os.environ, **context.environment()}
    try:
        done = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=step.timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout if isinstance(expired.stdout, str) else ""
        return StepOutcome(f"did not finish within {step.timeout:g} s (killed)", _tail(output))
    except OSError as error:
        return StepOutcome(f"could not start {argv[0]!r}: {error.strerror or error}")
    output = _tail((done.stdout or "") + (done.stderr or ""))
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()
        last = f": {detail[-1][:300]}" if detail else ""
        return StepOutcome(f"exited with status {done.returncode}{last}", output)
    return StepOutcome(None, output)


def _run_callable(step: Step, context: StepContext) -> StepOutcome:
    result: list[StepOutcome] = []

    def call() -> None:
        try:
            answer = step.action(context)  # type: ignore[operator]
        except Exception as error:
            logger.warning("step %r raised", step.name, exc_info=True)
            result.append(StepOutcome(f"raised {type(error).__name__}: {error}"))
            return
        if answer is False:
            result.append(StepOutcome("returned False"))
        else:
            result.append(StepOutcome(None, "" if answer is None else _tail(str(answer))))

    thread = threading.Thread(target=call, name=f"vmfailover-step-{step.name}", daemon=True)
    thread.start()
    thread.join(step.timeout)
    if thread.is_alive():
        return StepOutcome(f"did not return within {step.timeout:g} s (abandoned)")
    return result[0]


@attrs.define
class _Gate:
    approval: Approval
    request: ApprovalRequest
    answered: threading.Event = attrs.field(factory=threading.Event)
    approved: bool = False
    by: str = ""


class ApprovalGates:
    """The approval gates a run is waiting at, answered by ``approve`` or by their approvers."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._gates: dict[str, _Gate] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def waiting(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(name for name, gate in self._gates.items() if not gate.answered.is_set())

    def wait(self, approval: Approval, request: ApprovalRequest) -> tuple[bool, str]:
        """Block until the gate is answered or times out: (approved, by whom or why not)."""
        gate = _Gate(approval, request)
        if approval.approver is not None:
            try:
                answer = approval.approver(request)
            except Exception as error:
                logger.warning("approver of %r raised", approval.name, exc_info=True)
                answer = None
                gate.by = f"approver raised {type(error).__name__}: {error}"
            if answer is True or answer is False:
                return answer, "approver"
        with self._lock:
            if self._closed:
                return False, "the run was cancelled"
            self._gates[approval.name] = gate
        try:
            if not gate.answered.wait(approval.timeout):
                return False, f"nobody approved within {approval.timeout:g} s"
            return gate.approved, gate.by
        finally:
            with self._lock:
                self._gates.pop(approval.name, None)

    def answer(self, name: str, approved: bool, by: str) -> None:
        """Answer the gate ``name``; our error if no gate of that name is waiting."""
        with self._lock:
            gate = self._gates.get(name) if isinstance(name, str) else None
            if gate is None or gate.answered.is_set():
                waiting = [n for n, g in self._gates.items() if not g.answered.is_set()]
                hint = (
                    f"waiting now: {', '.join(repr(n) for n in waiting)}"
                    if waiting
                    else ("no approval is waiting")
                )
                error = ConflictError if name in self._gates else NotFoundError
                raise error(f"run {self.run_id}: approval {name!r} is not waiting ({hint})")
            gate.approved = approved
            gate.by = by
            gate.answered.set()

    def close(self) -> None:
        """Refuse every waiting gate (the run is being cancelled)."""
        with self._lock:
            self._closed = True
            for gate in self._gates.values():
                if not gate.answered.is_set():
                    gate.approved = False
                    gate.by = "the run was cancelled"
                    gate.answered.set()
