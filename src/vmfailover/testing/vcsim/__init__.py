"""govmomi's vCenter simulator, built from Debian's packages, for testing the vSphere backend.

``VCSim`` runs one in a child process (HTTPS on a free 127.0.0.1 port, one user and password);
``vmfailover.testing.vcsim.fixtures`` has the pytest fixture (one simulator per test session).
"""

from vmfailover.testing.vcsim.build import DEBIAN_PACKAGES, VCSimBuildError, build_launcher
from vmfailover.testing.vcsim.launcher import VCSim, VCSimError, VCSimInventory

__all__ = [
    "DEBIAN_PACKAGES",
    "VCSim",
    "VCSimBuildError",
    "VCSimError",
    "VCSimInventory",
    "build_launcher",
]
