"""The vSphere backend (pyVmomi): ``pip install 'vmfailover[vsphere]'``.

``VSphereBackend([VCenter(site="site-a", host=..., credentials=...), VCenter(site="site-b", ...)])``
opens one connection per site. See docs/vsphere.md for the permissions it needs, TLS, and what
the reference data mover does and costs.
"""

from vmfailover.backends.vsphere.backend import RECOVERY_POINT_LIMIT, VSphereBackend
from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.backends.vsphere.faults import FAULT_KINDS, FaultKind, fault_kind, translate_fault
from vmfailover.backends.vsphere.movers import DataMover, DiskPair, FullCopyMover, TransferJob
from vmfailover.backends.vsphere.settings import VCenter

__all__ = [
    "FAULT_KINDS",
    "RECOVERY_POINT_LIMIT",
    "DataMover",
    "DiskPair",
    "FaultKind",
    "FullCopyMover",
    "TransferJob",
    "VCenter",
    "VCenterConnection",
    "VSphereBackend",
    "fault_kind",
    "translate_fault",
]
