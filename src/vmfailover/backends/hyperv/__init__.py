"""The Hyper-V backend: Hyper-V Replica driven over PowerShell Remoting with pypsrp.

Install with ``pip install 'vmfailover[hyperv]'``. See :class:`HyperVBackend` and
:class:`HostConnection`, and the documentation page "The Hyper-V backend".
"""

from .backend import RECOVERY_POINT_LIMIT, HyperVBackend
from .config import AUTH_METHODS, HostConnection
from .errors import ERROR_TABLE, ErrorRecord, classify

__all__ = [
    "AUTH_METHODS",
    "ERROR_TABLE",
    "RECOVERY_POINT_LIMIT",
    "ErrorRecord",
    "HostConnection",
    "HyperVBackend",
    "classify",
]
