"""Failover plans: what to fail over, from which point, with which mapping, order and options.

The layer between the pure rules (:mod:`vmfailover.policy`) and execution
(:mod:`vmfailover.engine`): a :class:`FailoverPlan` is plain data; :meth:`FailoverPlan.validate`
is the read-only pre-flight against a backend; :meth:`FailoverPlan.compile` resolves the plan into
the per-VM work (:class:`CompiledPlan`) that the runner executes and the simulator predicts. It may
import the model, the policy layer and the backend protocol.
"""

from vmfailover.plan.check import Facts, check, gather, resolve
from vmfailover.plan.compiled import CompiledPlan, NicChange, VMRecovery, compile_plan
from vmfailover.plan.plan import FailoverPlan, PowerOffSource
from vmfailover.plan.steps import (
    Approval,
    ApprovalRequest,
    Step,
    StepContext,
    StepFailure,
    StepScope,
    When,
)

__all__ = [
    "Approval",
    "ApprovalRequest",
    "CompiledPlan",
    "Facts",
    "FailoverPlan",
    "NicChange",
    "PowerOffSource",
    "Step",
    "StepContext",
    "StepFailure",
    "StepScope",
    "VMRecovery",
    "When",
    "check",
    "compile_plan",
    "gather",
    "resolve",
]
