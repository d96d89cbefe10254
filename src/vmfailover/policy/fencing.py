"""The split-brain guard: may a replica start while its source might still run?

Pure: it reads an inventory snapshot (the source's power state and its host's reachability) and
answers with the reason starting the replica could split the brain, or None when it cannot.
"""

from __future__ import annotations

from vmfailover._render import in_words
from vmfailover.model import VM, Inventory, PowerState, Replica

__all__ = ["fence_reason"]


def fence_reason(inventory: Inventory, source: VM, replica: Replica) -> str | None:
    """Why starting ``replica`` could split the brain with ``source``, or None when it cannot."""
    host = inventory.host(source.host)
    replica_vm = inventory.vm(replica.replica_vm)
    if replica_vm.power_state is PowerState.ON:
        return f"its replica VM {replica_vm.name!r} is already running"
    if source.power_state is not PowerState.ON:
        return None
    if host.available:
        return f"the source is running on {host.name!r}, which answers"
    return (
        f"the source was last seen running on {host.name!r}, which is "
        f"{in_words(host.connection)} but not known to be powered off"
    )
