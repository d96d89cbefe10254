"""Test support that ships with vmfailover: the lab, the backend contract suite, simulators.

Products that embed vmfailover use these to test their own integration against the same peers we
test against: :func:`lab` for a ready two-site world on the memory backend (:func:`scaled_lab`
for one of any size),
:mod:`vmfailover.testing.contract` for the suite every backend must pass, and
:mod:`vmfailover.testing.hyperv` for a simulated Hyper-V host reached over WinRM/PSRP.
"""

from vmfailover.backends.memory.faults import FaultInjector, SimulatedCrash
from vmfailover.backends.memory.lab import (
    LAB_DEPENDENCIES,
    LAB_NETWORK_MAP,
    LAB_TEST_NETWORK_MAP,
    LAB_VMS,
    SCALED_NETWORK_MAP,
    lab,
    scaled_lab,
)

__all__ = [
    "LAB_DEPENDENCIES",
    "LAB_NETWORK_MAP",
    "LAB_TEST_NETWORK_MAP",
    "LAB_VMS",
    "SCALED_NETWORK_MAP",
    "FaultInjector",
    "SimulatedCrash",
    "lab",
    "scaled_lab",
]
