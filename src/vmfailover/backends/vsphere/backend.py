"""The vSphere backend: vmfailover's protocol on pyVmomi, one vCenter connection per site.

Ids: a VM's id is ``<site>:<managed object id>`` (``site-b:vm-42``), stable across renames and
moves within its vCenter; a replica's id is its replica VM's id plus ``/replica``; a recovery
point's id is the replica VM's id plus ``/<snapshot id>``. Ids carry the site, so a call goes
straight to the right vCenter without a lookup.

The replica model follows Veeam and NAKIVO on vSphere: the replica is a powered-off VM at the
target, cloned from a snapshot of the source with the network mapping in the clone spec; each
sync moves the data (through a :class:`~vmfailover.backends.vsphere.movers.DataMover`) and then
takes a snapshot of the replica VM, named and described so it is found again. Reads go through
the PropertyCollector with explicit paths; tasks are awaited with one filter and
``WaitForUpdatesEx``; vim faults become our errors by :mod:`~vmfailover.backends.vsphere.faults`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from pyVmomi import vim, vmodl

from vmfailover.backends.base import Readiness, Throttle, host_lacks
from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.backends.vsphere.devices import (
    NetworkInfo,
    counterpart_mac,
    disks,
    nic_edit,
    nic_network,
    nics,
)
from vmfailover.backends.vsphere.guest import customization_spec, guest_os_of, reported_addresses
from vmfailover.backends.vsphere.inventory import (
    POWER,
    VM_PATHS,
    DatacenterInfo,
    HostInfo,
    SiteView,
    VMInfo,
    find_datacenter,
    read_site,
)
from vmfailover.backends.vsphere.metadata import (
    GUEST_IP,
    REPLICA_ID,
    REPLICA_KEYS,
    REPLICA_STATE,
    TESTCOPY_KEY,
    TESTCOPY_REPLICA,
    ReplicaRecord,
    decode_guest_ip,
    decode_point,
    encode_guest_ip,
    encode_point,
    extra_config,
    point_id,
    replica_id,
    split_point_id,
    split_replica_id,
)
from vmfailover.backends.vsphere.movers import DataMover, DiskPair, FullCopyMover, TransferJob
from vmfailover.backends.vsphere.properties import ObjectProperties, retrieve_objects
from vmfailover.backends.vsphere.settings import VCenter
from vmfailover.backends.vsphere.tasks import wait_and_read, wait_for_task
from vmfailover.clock import Clock, SystemClock
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    VM,
    ConnectionState,
    Consistency,
    Datastore,
    GuestOS,
    Host,
    Inventory,
    IPConfig,
    Network,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    Site,
    _mac,
    is_finite_number,
)

__all__ = ["RECOVERY_POINT_LIMIT", "VSphereBackend"]

RECOVERY_POINT_LIMIT = 32
"""Snapshots per chain vSphere supports (and so recovery points per replica)."""

_SYNCABLE = (ReplicaState.INITIALIZING, ReplicaState.READY)
_NOT_FAILED_OVER = (ReplicaState.INITIALIZING, ReplicaState.READY)


@attrs.frozen
class _Known:
    """The backend's last read of a VM: which paths, and when (the clock's monotonic seconds)."""

    props: ObjectProperties
    paths: frozenset[str]
    read_at: float


# What the failover calls need of a VM. A task's confirming read carries what the calls after it
# are likely to need, and no more: device lists are most of a VM's weight on the wire.
_STATE_PATHS = ("name", "runtime.powerState", "config.extraConfig", "config.guestId")
_REPLICA_PATHS = (*_STATE_PATHS, "snapshot.rootSnapshotList")
_DEVICE_PATHS = (*_STATE_PATHS, "config.hardware.device")
_PLACEMENT_PATHS = (*_REPLICA_PATHS, "runtime.host", "resourcePool", "parent")


@attrs.frozen
class _Current:
    """A VM's properties for a call to act on; ``reused`` when they come from an earlier read."""

    props: ObjectProperties
    paths: tuple[str, ...]
    reused: bool

    def get(self, path: str, default: Any = None) -> Any:
        return self.props.get(path, default)


@attrs.define
class _Site:
    settings: VCenter
    conn: VCenterConnection
    datacenter: DatacenterInfo | None = None
    networks: dict[str, NetworkInfo] = attrs.field(factory=dict)
    last_view: SiteView | None = None


class VSphereBackend:
    """vmfailover's backend protocol on one or more vCenters, one connection per site.

    ``vcenters`` lists each site's :class:`~vmfailover.backends.vsphere.settings.VCenter`
    (two vCenters, one per site, is the normal case; two sites may also be two datacenters of
    one vCenter). ``data_mover`` moves disk data on each sync
    (:class:`~vmfailover.backends.vsphere.movers.FullCopyMover` by default; read its costs).
    """

    name = "vsphere"

    def __init__(
        self,
        vcenters: Iterable[VCenter],
        *,
        data_mover: DataMover | None = None,
        clock: Clock | None = None,
    ) -> None:
        settings = list(vcenters)
        if not settings:
            raise ValidationError.of("VSphereBackend vcenters", "give at least one VCenter")
        self._sites: dict[str, _Site] = {}
        for item in settings:
            if not isinstance(item, VCenter):
                raise ValidationError.of(
                    "VSphereBackend vcenters", f"expected VCenter settings, got {item!r}"
                )
            if item.site in self._sites:
                raise ValidationError.of(f"site {item.site!r}", "has two VCenter settings")
            self._sites[item.site] = _Site(item, VCenterConnection(item))
        self.mover: DataMover = data_mover if data_mover is not None else FullCopyMover()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], _Known] = {}
        self._known_lock = threading.Lock()
        self._unmarked: set[tuple[str, str]] = set()  # reverted; the marker rides the next write

    def __repr__(self) -> str:
        sites = ", ".join(f"{s.settings.site}={s.settings.address}" for s in self._sites.values())
        return f"VSphereBackend({sites})"

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self._sites)

    def connection(self, site: str) -> VCenterConnection:
        """The site's vCenter connection (for tools that need raw access, like benchmarks)."""
        return self._site(site).conn

    def close(self) -> None:
        """Log out of every vCenter."""
        for site in self._sites.values():
            site.conn.close()

    def __enter__(self) -> VSphereBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- addressing ------------------------------------------------------------------------------

    def _site(self, name: str) -> _Site:
        site = self._sites.get(name)
        if site is None:
            raise NotFoundError(f"no site {name!r} (this backend has: {', '.join(self._sites)})")
        return site

    def _vm_ref(self, vm_id: object, what: str = "VM") -> tuple[_Site, Any]:
        if not isinstance(vm_id, str) or ":" not in vm_id:
            raise NotFoundError(f"no {what} with id {vm_id!r} (ids look like 'site:vm-42')")
        site_name, _, moref = vm_id.partition(":")
        site = self._sites.get(site_name)
        if site is None or not moref.startswith("vm-"):
            raise NotFoundError(f"no {what} with id {vm_id!r}")
        return site, site.conn.managed("VirtualMachine", moref)

    def _replica_ref(self, value: object) -> tuple[str, _Site, Any]:
        vm_id = split_replica_id(value) if isinstance(value, str) else None
        if vm_id is None:
            raise NotFoundError(f"no replica {value!r}")
        site, ref = self._vm_ref(vm_id, "replica VM")
        return vm_id, site, ref

    def _datacenter(self, site: _Site) -> DatacenterInfo:
        if site.datacenter is None:
            site.datacenter = find_datacenter(site.conn, site.settings.datacenter)
        return site.datacenter

    def _read_vm(self, site: _Site, ref: Any, vm_id: str, paths: Sequence[str]) -> ObjectProperties:
        try:
            found = retrieve_objects(
                site.conn, [ref], {"VirtualMachine": tuple(paths)}, what=f"reading VM {vm_id!r}"
            )
        except NotFoundError:
            raise NotFoundError(f"no VM with id {vm_id!r}") from None
        if not found:
            raise NotFoundError(f"no VM with id {vm_id!r}")
        return found[0]

    def _read_replica(
        self, replica: str, paths: Sequence[str]
    ) -> tuple[str, _Site, Any, ObjectProperties, ReplicaRecord]:
        vm_id, site, ref = self._replica_ref(replica)
        try:
            props = self._read_vm(site, ref, vm_id, ("name", "config.extraConfig", *paths))
        except NotFoundError:
            raise NotFoundError(f"no replica {replica!r}") from None
        record = ReplicaRecord.decode(
            extra_config(props.get("config.extraConfig")), f"VM {props.get('name')!r}"
        )
        if record is None or record.id != replica:
            raise NotFoundError(f"no replica {replica!r} (VM {vm_id!r} is no replica)")
        return vm_id, site, ref, props, record

    # --- what the backend last read of its VMs ----------------------------------------------------
    #
    # Failover calls come in a row for each VM (recovery points, revert, NICs, guest IP, power on),
    # and each used to read the VM before acting and read its task after. The inventory and every
    # task's confirming round trip already carry the VM's properties (VM_PATHS), so a call acts on
    # the last read when it is at most ``read_max_age`` old. Decisions not to act (a refusal, a
    # no-op) are never taken on an old read: the VM is read again first.

    def _remember(self, site: _Site, props: ObjectProperties, paths: Iterable[str]) -> None:
        known = _Known(props, frozenset(paths), self.clock.monotonic())
        with self._known_lock:
            self._known[(site.settings.site, props.moref)] = known

    def _forget(self, site_name: str, moref: str) -> None:
        with self._known_lock:
            self._known.pop((site_name, moref), None)

    def _current(
        self, site: _Site, ref: Any, vm_id: str, paths: Sequence[str], *, fresh: bool = False
    ) -> _Current:
        """The VM's ``paths``: from the last read if recent enough and complete, else read now."""
        if not fresh:
            with self._known_lock:
                known = self._known.get((site.settings.site, ref._moId))
            if (
                known is not None
                and known.paths.issuperset(paths)
                and self.clock.monotonic() - known.read_at <= site.settings.read_max_age
            ):
                return _Current(known.props, paths=tuple(paths), reused=True)
        props = self._read_vm(site, ref, vm_id, paths)
        self._remember(site, props, paths)
        return _Current(props, paths=tuple(paths), reused=False)

    def _confirmed(self, site: _Site, ref: Any, vm_id: str, current: _Current) -> _Current:
        """``current`` if read just now, else a new read: for decisions not to act."""
        if not current.reused:
            return current
        return self._current(site, ref, vm_id, current.paths, fresh=True)

    def _known_replica(
        self, replica: str, *, fresh: bool = False, paths: Sequence[str] = _REPLICA_PATHS
    ) -> tuple[str, _Site, Any, _Current, ReplicaRecord]:
        vm_id, site, ref = self._replica_ref(replica)
        try:
            current = self._current(site, ref, vm_id, paths, fresh=fresh)
        except NotFoundError:
            raise NotFoundError(f"no replica {replica!r}") from None
        record = ReplicaRecord.decode(
            extra_config(current.get("config.extraConfig")), f"VM {current.get('name')!r}"
        )
        if record is None or record.id != replica:
            if current.reused:
                return self._known_replica(replica, fresh=True, paths=paths)
            raise NotFoundError(f"no replica {replica!r} (VM {vm_id!r} is no replica)")
        return vm_id, site, ref, current, record

    def _owes_marker(self, site: _Site, ref: Any) -> bool:
        with self._known_lock:
            return (site.settings.site, ref._moId) in self._unmarked

    def _with_marker(self, site: _Site, ref: Any, values: Mapping[str, str]) -> dict[str, str]:
        """``values``, plus the failed-over marker if this backend reverted the VM and owes it."""
        if not self._owes_marker(site, ref):
            return dict(values)
        return {**values, REPLICA_STATE: ReplicaState.FAILED_OVER.value}

    def _marker_written(self, site: _Site, ref: Any, values: Mapping[str, str]) -> None:
        if REPLICA_STATE in values:
            with self._known_lock:
                self._unmarked.discard((site.settings.site, ref._moId))

    def _act(
        self,
        site: _Site,
        ref: Any,
        what: str,
        call: Any,
        *args: Any,
        then: Sequence[str] = _STATE_PATHS,
        **kwargs: Any,
    ) -> Any:
        """Start a task on the VM ``ref`` and wait for it, reading the VM's ``then`` with it."""
        conn = site.conn
        task = conn.invoke(what, call, *args, **kwargs)
        waited = wait_and_read(conn, [task], [what], [ref], {"VirtualMachine": then})
        if waited.objects is not None and ref._moId in waited.objects:
            self._remember(site, waited.objects[ref._moId], then)
        else:
            self._forget(site.settings.site, ref._moId)
        return waited.outcomes[0].unwrap()

    # --- inventory -------------------------------------------------------------------------------

    def _view(self, site: _Site) -> SiteView:
        view = read_site(site.conn, site.settings.site, self._datacenter(site))
        site.networks = dict(view.networks)
        site.last_view = view
        for info in view.vms:
            self._remember(site, info.props, VM_PATHS)
        return view

    def _views(self) -> dict[str, SiteView | None]:
        views: dict[str, SiteView | None] = {}
        for name, site in self._sites.items():
            try:
                views[name] = self._view(site)
            except TransientBackendError:
                views[name] = None  # the site's vCenter does not answer: reported below
        return views

    def inventory(self) -> Inventory:
        """Every site's hosts, datastores, port groups, VMs and replicas.

        A site whose vCenter does not answer is reported from its last read with every host
        ``not_responding`` (or, never read, from what its replicas record about their sources),
        so a regular failover can still be planned; fencing then sees hosts it cannot vouch for.
        """
        views = self._views()
        if all(view is None for view in views.values()):
            names = ", ".join(self._sites)
            raise TransientBackendError(f"no vCenter answered (sites {names})")
        return self._build_inventory(views)

    def _build_inventory(self, views: Mapping[str, SiteView | None]) -> Inventory:
        counts: dict[str, int] = {}
        for view in views.values():
            if view is not None:
                for name in view.datastores:
                    counts[name] = counts.get(name, 0) + 1
        sites, hosts, datastores, networks, vms, replicas = [], [], [], [], [], []
        synthetic: dict[str, VM] = {}
        synthetic_hosts: dict[str, Host] = {}
        for name, site in self._sites.items():
            sites.append(Site(name))
            view = views.get(name)
            if view is None and site.last_view is not None:
                view = _unreachable(site.last_view)
            if view is None:
                continue
            for host_info in view.hosts.values():
                hosts.append(host_info.host)
            for ds_name, (_, capacity, free) in view.datastores.items():
                display = _datastore_name(name, ds_name, counts)
                datastores.append(Datastore(display, name, capacity, free))
            isolated = site.settings.isolated_networks
            for network in view.networks.values():
                networks.append(Network(network.name, name, isolated=network.name in isolated))
            test_copies = {info.test_copy_of for info in view.vms if info.test_copy_of}
            for info in view.vms:
                vm = info.vm
                if vm.datastore is not None:
                    vm = attrs.evolve(vm, datastore=_datastore_name(name, vm.datastore, counts))
                vms.append(vm)
                record = info.record
                if record is None:
                    continue
                state = record.state
                if record.id in test_copies and state in _NOT_FAILED_OVER:
                    state = ReplicaState.TEST_FAILOVER
                replicas.append(
                    Replica(
                        id=record.id,
                        source_vm=record.source_vm,
                        replica_vm=vm.id,
                        target_host=vm.host,
                        created_at=record.created_at,
                        state=state,
                        target_datastore=record.target_datastore,
                    )
                )
                synthetic[record.source_vm] = VM(
                    id=record.source_vm,
                    name=record.source_name,
                    host=record.source_host or f"{record.source_vm.partition(':')[0]}-host",
                    power_state=PowerState.ON,
                )
        known_vms = {vm.id for vm in vms}
        known_hosts = {host.name for host in hosts}
        for vm_id, placeholder in synthetic.items():
            if vm_id in known_vms:
                continue
            # the source is not in the inventory: its vCenter never answered, or it is gone
            source_site = vm_id.partition(":")[0]
            answered = views.get(source_site) is not None
            if answered:
                placeholder = attrs.evolve(placeholder, power_state=PowerState.OFF)
            vms.append(placeholder)
            known_vms.add(vm_id)
            if placeholder.host not in known_hosts and source_site in self._sites:
                synthetic_hosts[placeholder.host] = Host(
                    placeholder.host,
                    source_site,
                    connection=ConnectionState.CONNECTED
                    if answered
                    else ConnectionState.NOT_RESPONDING,
                )
                known_hosts.add(placeholder.host)
        hosts.extend(synthetic_hosts.values())
        return Inventory(
            sites=sites,
            hosts=sorted(hosts, key=lambda h: h.name),
            datastores=sorted(datastores, key=lambda d: d.name),
            networks=sorted(networks, key=lambda n: (n.site, n.name)),
            vms=sorted(vms, key=lambda v: v.id),
            replicas=sorted(replicas, key=lambda r: r.id),
        )

    def _network(self, site: _Site, name: str) -> NetworkInfo:
        found = site.networks.get(name)
        if found is None:
            self._view(site)  # port groups change rarely: read again once before refusing
            found = site.networks.get(name)
        if found is None:
            raise NotFoundError(f"no network {name!r} at site {site.settings.site!r}")
        return found

    # --- replicas --------------------------------------------------------------------------------

    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        source_site, _ = self._vm_ref(vm_id)
        views = self._views()
        source_view = views.get(source_site.settings.site)
        if source_view is None:
            raise TransientBackendError(f"{source_site.conn.label} does not answer")
        source = source_view.vm(vm_id.partition(":")[2])
        if source is None:
            raise NotFoundError(f"no VM with id {vm_id!r}")
        for view in views.values():
            for info in view.vms if view else ():
                record = info.record
                if (
                    record
                    and record.source_vm == vm_id
                    and record.state is not ReplicaState.REVERSED
                ):
                    if info.vm.host != target_host:
                        raise ConflictError(
                            f"VM {source.vm.name!r} already has replica {record.id!r} on host "
                            f"{info.vm.host!r}"
                        )
                    return self._replica_of(info, record)
        target_name, target_view, host_info = self._find_host(views, target_host)
        target = self._site(target_name)
        datastore_ref = _datastore_ref(target_view, target_datastore, views)
        if not host_info.host.available:
            raise TransientBackendError(
                f"target host {target_host!r} is {host_info.host.connection.value}"
            )
        mapping = dict(network_map or {})
        edits = []
        for device, mac in nics(source.devices):
            current = nic_network(device, _portgroup_keys(source_view))
            wanted = mapping.get(current, current)
            network = target_view.networks.get(wanted)
            if network is None:
                raise NotFoundError(
                    f"VM {source.vm.name!r} NIC {mac}: network {wanted!r} does not exist at "
                    f"site {target_name!r}"
                )
            edits.append(nic_edit(device, network))
        if not _same_vcenter(source_site.conn, target.conn):
            raise PermanentBackendError(
                f"VM {source.vm.name!r}: creating a replica on another vCenter "
                f"({target.conn.label}) needs a cross-vCenter seed, which this backend does "
                "not do yet; put both sites on one vCenter or seed the replica VM yourself"
            )
        created = self.clock.now()
        record = ReplicaRecord(
            id="",  # known once the clone has an id
            source_vm=vm_id,
            source_name=source.vm.name,
            source_host=source.vm.host,
            created_at=created,
            state=ReplicaState.INITIALIZING,
            target_datastore=target_datastore,
        )
        conn = source_site.conn
        what = f"replicating VM {source.vm.name!r}"
        snapshot = wait_for_task(
            conn,
            conn.invoke(
                what,
                source.ref.CreateSnapshot_Task,
                name="vmfailover seed",
                description="vmfailover: the state a new replica is cloned from",
                memory=False,
                quiesce=False,
            ),
            f"{what}: snapshot of the source",
        )
        try:
            spec = vim.vm.CloneSpec(
                location=vim.vm.RelocateSpec(
                    host=host_info.ref, pool=host_info.pool, datastore=datastore_ref
                ),
                snapshot=snapshot,
                powerOn=False,
                template=False,
                config=vim.vm.ConfigSpec(
                    deviceChange=edits,
                    # the id is the clone's own, so it is written once the clone exists
                    extraConfig=_options(
                        {k: v for k, v in record.encode().items() if k != REPLICA_ID}
                    ),
                ),
            )
            clone = wait_for_task(
                target.conn,
                conn.invoke(
                    what,
                    source.ref.CloneVM_Task,
                    folder=self._datacenter(target).vm_folder,
                    name=f"{source.vm.name}_replica",
                    spec=spec,
                ),
                f"{what}: cloning onto {target_host!r}",
            )
        finally:
            self._remove_snapshot(conn, snapshot, f"{what}: removing the seed snapshot")
        replica_vm = f"{target_name}:{clone._moId}"
        record = attrs.evolve(record, id=replica_id(replica_vm))
        self._reconfigure(target.conn, clone, {REPLICA_ID: record.id}, f"{what}: recording it")
        return Replica(
            id=record.id,
            source_vm=vm_id,
            replica_vm=replica_vm,
            target_host=target_host,
            created_at=created,
            state=ReplicaState.INITIALIZING,
            target_datastore=record.target_datastore,
        )

    def _replica_of(self, info: VMInfo, record: ReplicaRecord) -> Replica:
        return Replica(
            id=record.id,
            source_vm=record.source_vm,
            replica_vm=info.vm.id,
            target_host=info.vm.host,
            created_at=record.created_at,
            state=record.state,
            target_datastore=record.target_datastore,
        )

    def _find_host(
        self, views: Mapping[str, SiteView | None], name: str
    ) -> tuple[str, SiteView, Any]:
        for site_name, view in views.items():
            if view is not None and name in view.hosts:
                return site_name, view, view.hosts[name]
        raise NotFoundError(f"no host {name!r}")

    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        consistency = Consistency(consistency)
        tag_list = _tags(tags)
        vm_id, site, ref, props, record = self._read_replica(
            replica_id,
            ("runtime.powerState", "config.hardware.device", "snapshot.rootSnapshotList"),
        )
        name = props.get("name")
        if record.state not in _SYNCABLE:
            raise ConflictError(
                f"replica {replica_id!r} is {record.state.value}: it cannot sync now"
            )
        if POWER.get(str(props.get("runtime.powerState"))) is PowerState.ON:
            raise ConflictError(f"replica VM {name!r} is running: it cannot receive a sync")
        points = _points(replica_id, vm_id, props.get("snapshot.rootSnapshotList"))
        if len(points) >= RECOVERY_POINT_LIMIT:
            raise ConflictError(
                f"replica {replica_id!r} holds {len(points)} recovery points, the limit: apply "
                "retention before syncing"
            )
        source_site, source_ref = self._vm_ref(record.source_vm, "source VM")
        source = self._read_vm(
            source_site, source_ref, record.source_vm, ("name", "config.hardware.device")
        )
        what = f"syncing replica {replica_id!r}"
        self._forget(site.settings.site, ref._moId)  # its disks and snapshots change now
        with self._known_lock:
            self._unmarked.discard(
                (site.settings.site, ref._moId)
            )  # no longer the point reverted to
        self._forget(source_site.settings.site, source_ref._moId)
        source_conn = source_site.conn
        frozen = wait_for_task(
            source_conn,
            source_conn.invoke(
                what,
                source_ref.CreateSnapshot_Task,
                name="vmfailover sync",
                description="vmfailover: the source state being replicated",
                memory=False,
                quiesce=consistency is Consistency.APPLICATION,
            ),
            f"{what}: freezing the source",
        )
        try:
            pairs = _disk_pairs(
                source.get("config.hardware.device"), props.get("config.hardware.device"), what
            )
            moved = self.mover.transfer(
                TransferJob(
                    source=source_conn,
                    target=site.conn,
                    source_vm=source_ref,
                    source_snapshot=frozen,
                    source_datacenter=self._datacenter(source_site).ref,
                    replica_vm=ref,
                    target_datacenter=self._datacenter(site).ref,
                    disks=pairs,
                    what=what,
                    throttle=throttle,
                )
            )
        finally:
            self._remove_snapshot(source_conn, frozen, f"{what}: releasing the source")
        created = self.clock.now()
        if points and created <= points[-1].created_at:
            created = points[-1].created_at  # the clock must not make a point older than the last
        snapshot_name, description = encode_point(created, consistency, tag_list, moved)
        snapshot = wait_for_task(
            site.conn,
            site.conn.invoke(
                what,
                ref.CreateSnapshot_Task,
                name=snapshot_name,
                description=description,
                memory=False,
                quiesce=False,
            ),
            f"{what}: recording the point",
        )
        if record.state is ReplicaState.INITIALIZING:
            self._reconfigure(
                site.conn, ref, {REPLICA_STATE: ReplicaState.READY.value}, f"{what}: marking ready"
            )
        return RecoveryPoint(
            id=point_id(vm_id, snapshot._moId),
            replica=replica_id,
            created_at=created,
            consistency=consistency,
            tags=frozenset(tag_list),
            size_bytes=moved,
        )

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        vm_id, _, _, current, _ = self._known_replica(replica_id)
        return tuple(_points(replica_id, vm_id, current.get("snapshot.rootSnapshotList")))

    def delete_recovery_point(self, point_id: str) -> None:
        parts = split_point_id(point_id) if isinstance(point_id, str) else None
        if parts is None:
            raise NotFoundError(f"no recovery point {point_id!r}")
        vm_id, snapshot = parts
        site, vm_ref = self._vm_ref(vm_id, "replica VM")
        self._forget(site.settings.site, vm_ref._moId)
        ref = site.conn.managed("VirtualMachineSnapshot", snapshot)
        try:
            self._remove_snapshot(site.conn, ref, f"deleting recovery point {point_id!r}")
        except NotFoundError:
            return  # gone already

    def recovery_point_limit(self) -> int | None:
        return RECOVERY_POINT_LIMIT

    # --- failover primitives ---------------------------------------------------------------------

    def revert(self, replica_id: str, point_id: str) -> None:
        parts = split_point_id(point_id) if isinstance(point_id, str) else None
        vm_id, site, ref, current, _ = self._known_replica(replica_id)
        if parts is None:
            raise NotFoundError(f"no recovery point {point_id!r}")
        if parts[0] != vm_id:
            raise ConflictError(
                f"recovery point {point_id!r} belongs to replica {replica_id_of(parts[0])!r}, "
                f"not {replica_id!r}"
            )
        if POWER.get(str(current.get("runtime.powerState"))) is not PowerState.OFF or (
            point_id not in _point_ids(replica_id, vm_id, current)
        ):
            current = self._confirmed(site, ref, vm_id, current)
        name = current.get("name")
        if POWER.get(str(current.get("runtime.powerState"))) is not PowerState.OFF:
            raise ConflictError(f"replica VM {name!r} is running: power it off before reverting")
        if point_id not in _point_ids(replica_id, vm_id, current):
            raise NotFoundError(f"no recovery point {point_id!r} of replica {replica_id!r}")
        what = f"reverting replica VM {name!r} to {point_id!r}"
        snapshot = site.conn.managed("VirtualMachineSnapshot", parts[1])
        # the devices come with the confirming read: a revert restores the snapshot's devices,
        # and moving NICs is what usually follows
        self._act(
            site,
            ref,
            what,
            snapshot.RevertToSnapshot_Task,
            suppressPowerOn=True,
            then=_DEVICE_PATHS,
        )
        # Reverting restores the configuration the snapshot recorded, our state marker included:
        # it is the VM as it is now that says whether the marker must be written again. It is
        # written with the next change of the VM's configuration this backend makes anyway (a NIC
        # moved, a guest address set, the customization handed over), at the latest right
        # before power-on; until then this backend knows the VM was reverted, and power_on
        # (of another backend, after a restart) refuses, asking for the revert again.
        after = self._current(site, ref, vm_id, _STATE_PATHS)
        record = ReplicaRecord.decode(extra_config(after.get("config.extraConfig")), f"VM {name!r}")
        if record is None or record.state is not ReplicaState.FAILED_OVER:
            with self._known_lock:
                self._unmarked.add((site.settings.site, ref._moId))

    def _own_mac(self, current: _Current, mac: str) -> str:
        """The VM's own MAC for the NIC the caller names ``mac``.

        A test copy's NICs are named by its replica's MACs (the plan knows the replica), while
        vCenter gave the copy new ones: the copy's NIC is the one with the replica NIC's device
        key. Any other VM's NICs are named by their own MACs.
        """
        devices = current.get("config.hardware.device")
        if _find_nic(devices, mac) is not None:
            return mac
        replica = extra_config(current.get("config.extraConfig")).get(TESTCOPY_REPLICA)
        replica_vm = split_replica_id(replica) if replica else None
        if replica_vm is None:
            return mac
        try:
            replica_site, replica_ref = self._vm_ref(replica_vm, "replica VM")
            original = self._current(replica_site, replica_ref, replica_vm, _DEVICE_PATHS)
            found = counterpart_mac(mac, original.get("config.hardware.device"), devices)
            if found is None and original.reused:
                original = self._confirmed(replica_site, replica_ref, replica_vm, original)
                found = counterpart_mac(mac, original.get("config.hardware.device"), devices)
        except NotFoundError:
            return mac  # the replica is gone: the copy's own NICs are all there is
        return found or mac

    def _failover_state(self, site: _Site, ref: Any, record: ReplicaRecord) -> ReplicaState:
        """The replica's state, counting a revert whose marker is still owed as failed over."""
        return ReplicaState.FAILED_OVER if self._owes_marker(site, ref) else record.state

    def commit_failover(self, replica_id: str) -> None:
        """Delete every recovery point but the one the replica VM runs from (its current
        snapshot), then mark the replica committed. Idempotent: a repeat after a crash deletes
        what is left and marks it."""
        vm_id, site, ref, props, record = self._read_replica(
            replica_id, ("snapshot.rootSnapshotList", "snapshot.currentSnapshot")
        )
        state = self._failover_state(site, ref, record)
        if state is ReplicaState.COMMITTED:
            return
        if state is not ReplicaState.FAILED_OVER:
            raise ConflictError(
                f"replica {replica_id!r} is {state.value}: only a failed-over replica can be "
                "committed"
            )
        current = props.get("snapshot.currentSnapshot")
        kept = point_id(vm_id, current._moId) if current is not None else None
        what = f"committing the failover of replica {replica_id!r}"
        self._forget(site.settings.site, ref._moId)
        for point in _points(replica_id, vm_id, props.get("snapshot.rootSnapshotList")):
            if point.id == kept:
                continue
            parts = split_point_id(point.id)
            assert parts is not None
            snapshot = site.conn.managed("VirtualMachineSnapshot", parts[1])
            with contextlib.suppress(NotFoundError):  # gone already (a repeat)
                self._remove_snapshot(site.conn, snapshot, f"{what}: deleting {point.id!r}")
        self._reconfigure(site.conn, ref, {REPLICA_STATE: ReplicaState.COMMITTED.value}, what)
        with self._known_lock:
            self._unmarked.discard((site.settings.site, ref._moId))

    def undo_failover(self, replica_id: str) -> None:
        """Power the replica VM off, revert it to its newest recovery point (what the last sync
        left in it, before the failover) and mark it ready. Idempotent."""
        vm_id, site, ref, props, record = self._read_replica(
            replica_id, ("runtime.powerState", "snapshot.rootSnapshotList")
        )
        state = self._failover_state(site, ref, record)
        points = _points(replica_id, vm_id, props.get("snapshot.rootSnapshotList"))
        what = f"undoing the failover of replica {replica_id!r}"
        if state is ReplicaState.READY:
            return
        if state is ReplicaState.INITIALIZING:
            if points:  # reverted to its first point, which still carried this marker
                self._reconfigure(site.conn, ref, {REPLICA_STATE: ReplicaState.READY.value}, what)
            return
        if state is not ReplicaState.FAILED_OVER:
            raise ConflictError(
                f"replica {replica_id!r} is {state.value}: there is no failover to undo"
                + (" (a committed failover is final)" if state is ReplicaState.COMMITTED else "")
            )
        if not points:
            raise ConflictError(f"replica {replica_id!r} has no recovery point to go back to")
        self._forget(site.settings.site, ref._moId)
        if POWER.get(str(props.get("runtime.powerState"))) is not PowerState.OFF:
            try:
                wait_for_task(site.conn, site.conn.invoke(what, ref.PowerOffVM_Task), what)
            except ConflictError:
                if self._power(site, ref, vm_id) is PowerState.ON:
                    raise
        parts = split_point_id(points[-1].id)
        assert parts is not None
        snapshot = site.conn.managed("VirtualMachineSnapshot", parts[1])
        wait_for_task(
            site.conn,
            site.conn.invoke(what, snapshot.RevertToSnapshot_Task, suppressPowerOn=True),
            f"{what}: reverting to {points[-1].id!r}",
        )
        self._reconfigure(site.conn, ref, {REPLICA_STATE: ReplicaState.READY.value}, what)
        with self._known_lock:
            self._unmarked.discard((site.settings.site, ref._moId))

    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        site, ref = self._vm_ref(vm_id)
        current = self._current(site, ref, vm_id, _DEVICE_PATHS)
        wanted = self._own_mac(current, _mac(mac))
        target = self._network(site, network)
        device = _find_nic(current.get("config.hardware.device"), wanted)
        if device is None or _backing_matches(device, target):
            current = self._confirmed(site, ref, vm_id, current)
            device = _nic(current.get("config.hardware.device"), wanted, current.get("name"))
            if _backing_matches(device, target):
                return
        what = f"connecting VM {current.get('name')!r} NIC {wanted} to {network!r}"
        values = self._with_marker(site, ref, {})
        spec = vim.vm.ConfigSpec(
            deviceChange=[nic_edit(device, target)], extraConfig=_options(values) or None
        )
        self._act(site, ref, what, ref.ReconfigVM_Task, spec, then=_DEVICE_PATHS)
        self._marker_written(site, ref, values)

    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        site, ref = self._vm_ref(vm_id)
        named = _mac(mac)
        checked = _ip_configs(configs, f"set_guest_ip({vm_id!r}, {named})")
        current = self._current(site, ref, vm_id, _DEVICE_PATHS)
        wanted = self._own_mac(current, named)
        if _guest_ip_refusal(current, wanted) is not None or _guest_ip_pending(
            current, wanted, checked
        ):
            current = self._confirmed(site, ref, vm_id, current)
            refusal = _guest_ip_refusal(current, wanted)
            if refusal is not None:
                raise refusal
            if _guest_ip_pending(current, wanted, checked):
                return
        pending = decode_guest_ip(extra_config(current.get("config.extraConfig")).get(GUEST_IP, ""))
        pending[wanted] = checked
        name = current.get("name")
        what = f"setting the guest address of VM {name!r} NIC {wanted}"
        values = self._with_marker(site, ref, {GUEST_IP: encode_guest_ip(pending)})
        spec = vim.vm.ConfigSpec(extraConfig=_options(values))
        self._act(site, ref, what, ref.ReconfigVM_Task, spec, then=_DEVICE_PATHS)
        self._marker_written(site, ref, values)

    def power_on(self, vm_id: str) -> None:
        site, ref = self._vm_ref(vm_id)
        current = self._current(site, ref, vm_id, _STATE_PATHS)
        reverted = self._owes_marker(site, ref)
        if _power_on_refusal(current, reverted) is not None or (
            POWER.get(str(current.get("runtime.powerState"))) is PowerState.ON
        ):
            current = self._confirmed(site, ref, vm_id, current)
            if POWER.get(str(current.get("runtime.powerState"))) is PowerState.ON:
                return
            refusal = _power_on_refusal(current, reverted)
            if refusal is not None:
                raise refusal
        name = str(current.get("name"))
        pending = decode_guest_ip(extra_config(current.get("config.extraConfig")).get(GUEST_IP, ""))
        what = f"powering on VM {name!r}"
        if pending:
            current = self._current(site, ref, vm_id, _DEVICE_PATHS)
            pending = decode_guest_ip(
                extra_config(current.get("config.extraConfig")).get(GUEST_IP, "")
            )
        if pending:
            macs = [mac for _, mac in nics(current.get("config.hardware.device"))]
            guest_os = guest_os_of(current.get("config.guestId"))
            spec = customization_spec(name, guest_os, macs, pending)
            self._act(site, ref, f"{what}: customizing the guest", ref.CustomizeVM_Task, spec)
            values = self._with_marker(site, ref, {GUEST_IP: ""})
            handed_over = vim.vm.ConfigSpec(extraConfig=_options(values))
            self._act(
                site, ref, f"{what}: customization handed over", ref.ReconfigVM_Task, handed_over
            )
            self._marker_written(site, ref, values)
        if self._owes_marker(site, ref):
            values = self._with_marker(site, ref, {})
            marker = vim.vm.ConfigSpec(extraConfig=_options(values))
            self._act(site, ref, f"{what}: state", ref.ReconfigVM_Task, marker)
            self._marker_written(site, ref, values)
        try:
            self._act(site, ref, what, ref.PowerOnVM_Task)
        except ConflictError:
            if self._power(site, ref, vm_id) is not PowerState.ON:
                raise

    def _power(self, site: _Site, ref: Any, vm_id: str) -> PowerState:
        props = self._read_vm(site, ref, vm_id, ("runtime.powerState",))
        return POWER.get(str(props.get("runtime.powerState")), PowerState.ON)

    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        if not is_finite_number(timeout) or timeout < 0:
            raise ValidationError.of(
                "shutdown_guest timeout", f"must be a finite number >= 0, got {timeout!r}"
            )
        site, ref = self._vm_ref(vm_id)
        self._forget(site.settings.site, ref._moId)
        props = self._read_vm(site, ref, vm_id, ("name", "runtime.powerState"))
        name = props.get("name")
        if POWER.get(str(props.get("runtime.powerState"))) is not PowerState.ON:
            return
        what = f"shutting down the guest of VM {name!r}"
        try:  # noqa: SIM105
            site.conn.invoke(what, ref.ShutdownGuest)
        except ConflictError:
            pass  # it went off meanwhile: the wait below sees it
        self._wait_powered_off(site, ref, timeout, what)

    def _wait_powered_off(self, site: _Site, ref: Any, timeout: float, what: str) -> None:
        deadline = self.clock.monotonic() + timeout
        conn = site.conn
        while True:
            generation = conn.generation
            try:
                self._watch_power(site, ref, deadline, timeout, what)
                return
            except NotFoundError:
                if conn.generation == generation:
                    raise
                # vCenter restarted: the watch's collector went with the session; watch again

    def _watch_power(
        self, site: _Site, ref: Any, deadline: float, timeout: float, what: str
    ) -> None:
        conn = site.conn
        pc = vmodl.query.PropertyCollector
        state = self._power(site, ref, f"{site.settings.site}:{ref._moId}")
        if state is not PowerState.ON:
            return
        if deadline - self.clock.monotonic() <= 0:
            raise TransientBackendError(f"{what}: still running after {timeout:g} s")
        collector = conn.invoke(what, conn.content.propertyCollector.CreatePropertyCollector)
        try:
            spec = pc.FilterSpec(
                objectSet=[pc.ObjectSpec(obj=ref, skip=False)],
                propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])],
            )
            conn.invoke(what, collector.CreateFilter, spec, False)
            version = ""
            while True:
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    raise TransientBackendError(f"{what}: still running after {timeout:g} s")
                options = pc.WaitOptions(maxWaitSeconds=max(1, min(int(remaining), 30)))
                update = conn.invoke(what, collector.WaitForUpdatesEx, version, options)
                if update is None:
                    continue
                version = update.version
                for filter_update in update.filterSet or ():
                    for object_update in filter_update.objectSet or ():
                        for change in object_update.changeSet or ():
                            if (
                                change.name == "runtime.powerState"
                                and str(change.val) != "poweredOn"
                            ):
                                return
        finally:
            with contextlib.suppress(VMFailoverError):
                conn.invoke(what, collector.DestroyPropertyCollector)

    def power_off(self, vm_id: str) -> None:
        site, ref = self._vm_ref(vm_id)
        self._forget(site.settings.site, ref._moId)
        what = f"powering off VM {vm_id!r}"
        try:
            wait_for_task(site.conn, site.conn.invoke(what, ref.PowerOffVM_Task), what)
        except NotFoundError:
            raise NotFoundError(f"no VM with id {vm_id!r}") from None
        except ConflictError:
            if self._power(site, ref, vm_id) is PowerState.ON:
                raise

    def readiness(self, vm_id: str) -> Readiness:
        site, ref = self._vm_ref(vm_id)
        props = self._read_vm(
            site,
            ref,
            vm_id,
            (
                "runtime.powerState",
                "guest.toolsRunningStatus",
                "guestHeartbeatStatus",
                "guest.net",
                "guest.ipAddress",
            ),
        )
        if POWER.get(str(props.get("runtime.powerState"))) is not PowerState.ON:
            return Readiness(powered_on=False)
        heartbeat = str(props.get("guest.toolsRunningStatus")) == "guestToolsRunning" and str(
            props.get("guestHeartbeatStatus")
        ) in ("green", "yellow")
        addresses = reported_addresses(props.get("guest.net"), props.get("guest.ipAddress"))
        return Readiness(True, heartbeat, addresses if heartbeat else ())

    # --- test failover ---------------------------------------------------------------------------

    def create_test_copy(self, replica_id: str, point_id: str, key: str) -> str:
        if not isinstance(key, str) or not key.strip() or len(key) > 40:
            raise ValidationError.of(
                "create_test_copy key", f"must be 1-40 characters, got {key!r}"
            )
        parts = split_point_id(point_id) if isinstance(point_id, str) else None
        vm_id, site, ref, current, _record = self._known_replica(replica_id, paths=_PLACEMENT_PATHS)
        if parts is None:
            raise NotFoundError(f"no recovery point {point_id!r}")
        if parts[0] != vm_id:
            raise ConflictError(
                f"recovery point {point_id!r} belongs to replica {replica_id_of(parts[0])!r}"
            )
        if point_id not in _point_ids(replica_id, vm_id, current):
            current = self._confirmed(site, ref, vm_id, current)
            if point_id not in _point_ids(replica_id, vm_id, current):
                raise NotFoundError(f"no recovery point {point_id!r} of replica {replica_id!r}")
        name = f"{current.get('name')}-test-{key}"
        conn = site.conn
        folder = current.get("parent") or self._datacenter(site).vm_folder
        what = f"test copy {name!r} of replica {replica_id!r}"
        markers = dict.fromkeys(REPLICA_KEYS, "")
        markers.update({TESTCOPY_REPLICA: replica_id, TESTCOPY_KEY: key, GUEST_IP: ""})
        spec = vim.vm.CloneSpec(
            location=vim.vm.RelocateSpec(
                host=current.get("runtime.host"),
                pool=current.get("resourcePool"),
                diskMoveType="createNewChildDiskBacking",
            ),
            snapshot=conn.managed("VirtualMachineSnapshot", parts[1]),
            powerOn=False,
            template=False,
            config=vim.vm.ConfigSpec(extraConfig=_options(markers)),
        )
        try:
            clone = wait_for_task(
                conn, conn.invoke(what, ref.CloneVM_Task, folder=folder, name=name, spec=spec), what
            )
        except ConflictError:
            # the name is taken (vCenter refuses duplicate names in a folder): ours, made by an
            # earlier call with this key, or someone else's
            existing = conn.invoke(what, conn.content.searchIndex.FindChild, folder, name)
            if existing is None:
                raise
            extra = extra_config(
                self._read_vm(site, existing, name, ("config.extraConfig",)).get(
                    "config.extraConfig"
                )
            )
            if extra.get(TESTCOPY_REPLICA) == replica_id and extra.get(TESTCOPY_KEY) == key:
                return f"{site.settings.site}:{existing._moId}"
            raise ConflictError(
                f"{what}: a VM of that name exists and is not that test copy"
            ) from None
        return f"{site.settings.site}:{clone._moId}"

    def remove_test_copy(self, vm_id: str) -> None:
        site, ref = self._vm_ref(vm_id)
        self._forget(site.settings.site, ref._moId)
        try:
            props = self._read_vm(
                site, ref, vm_id, ("name", "runtime.powerState", "config.extraConfig")
            )
        except NotFoundError:
            return
        name = props.get("name")
        if not extra_config(props.get("config.extraConfig")).get(TESTCOPY_KEY):
            raise ConflictError(f"VM {name!r} is not a test copy")
        what = f"removing test copy {name!r}"
        try:
            if POWER.get(str(props.get("runtime.powerState"))) is not PowerState.OFF:
                try:  # noqa: SIM105
                    wait_for_task(site.conn, site.conn.invoke(what, ref.PowerOffVM_Task), what)
                except ConflictError:
                    pass  # off already
            wait_for_task(site.conn, site.conn.invoke(what, ref.Destroy_Task), what)
        except NotFoundError:
            return

    # --- failback --------------------------------------------------------------------------------

    def reverse_replication(self, replica_id: str) -> Replica:
        vm_id, site, ref, props, record = self._read_replica(replica_id, ("runtime.host",))
        original_site, original_ref = self._vm_ref(record.source_vm, "source VM")
        original = self._read_vm(
            original_site,
            original_ref,
            record.source_vm,
            ("name", "runtime.powerState", "runtime.host", "config.extraConfig", "datastore"),
        )
        reverse_id = f"{record.source_vm}/replica"
        existing = ReplicaRecord.decode(
            extra_config(original.get("config.extraConfig")), f"VM {original.get('name')!r}"
        )
        host_names = self._host_name(original_site, original.get("runtime.host"))
        state = self._failover_state(site, ref, record)
        if existing is not None and existing.id == reverse_id and existing.source_vm == vm_id:
            if existing.state is ReplicaState.REVERSED and state in (
                ReplicaState.FAILED_OVER,
                ReplicaState.COMMITTED,
            ):  # a failback done: the original replica resumes, this one is reversed
                if POWER.get(str(original.get("runtime.powerState"))) is not PowerState.OFF:
                    raise ConflictError(
                        f"VM {original.get('name')!r} is running: it must be off to receive "
                        "replication again"
                    )
                what = f"handing replica {existing.id!r} back"
                resumed = {REPLICA_STATE: ReplicaState.READY.value}
                self._reconfigure(original_site.conn, original_ref, resumed, what)
                reversed_ = {REPLICA_STATE: ReplicaState.REVERSED.value}
                self._reconfigure(site.conn, ref, reversed_, what)
                with self._known_lock:
                    self._unmarked.discard((site.settings.site, ref._moId))
                existing = attrs.evolve(existing, state=ReplicaState.READY)
            return Replica(
                id=existing.id,
                source_vm=vm_id,
                replica_vm=record.source_vm,
                target_host=host_names,
                created_at=existing.created_at,
                state=existing.state,
                target_datastore=existing.target_datastore,
            )
        if state not in (ReplicaState.FAILED_OVER, ReplicaState.COMMITTED):
            raise ConflictError(
                f"replica {replica_id!r} is {state.value}: only a failed-over replica "
                "can replicate back"
            )
        if POWER.get(str(original.get("runtime.powerState"))) is not PowerState.OFF:
            raise ConflictError(
                f"VM {original.get('name')!r} is running: it must be off to receive reverse "
                "replication"
            )
        created = self.clock.now()
        stores = original.get("datastore") or ()
        reverse = ReplicaRecord(
            id=reverse_id,
            source_vm=vm_id,
            source_name=str(props.get("name")),
            source_host=self._host_name(site, props.get("runtime.host")),
            created_at=created,
            state=ReplicaState.INITIALIZING,
            target_datastore=self._datastore_display(original_site, stores[0]) if stores else None,
        )
        what = f"reversing replica {replica_id!r}"
        self._reconfigure(
            original_site.conn, original_ref, reverse.encode(), f"{what}: new replica"
        )
        self._reconfigure(site.conn, ref, {REPLICA_STATE: ReplicaState.REVERSED.value}, what)
        with self._known_lock:
            self._unmarked.discard((site.settings.site, ref._moId))
        return Replica(
            id=reverse_id,
            source_vm=vm_id,
            replica_vm=record.source_vm,
            target_host=host_names,
            created_at=created,
            state=ReplicaState.INITIALIZING,
            target_datastore=reverse.target_datastore,
        )

    # --- host failover ----------------------------------------------------------------------------

    def restart_on_host(self, vm_id: str, host: str) -> None:
        """RelocateVM_Task onto ``host`` (and its cluster's root pool), then power on."""
        site, ref, info, target, props = self._placement(vm_id, host)
        name = info.vm.name
        power = POWER.get(str(props.get("runtime.powerState")), PowerState.ON)
        if info.vm.host == host and power is PowerState.ON:
            return
        if power is PowerState.ON:
            where = info.vm.host
            raise ConflictError(
                f"VM {name!r} runs on host {where!r} as vCenter last saw it: starting it on "
                f"{host!r} would run it twice (a host cut off vCenter keeps its VMs running)"
            )
        if info.vm.host != host:
            _require_available(target.host, f"restarting VM {name!r}")
            _require_reach(info.vm, target.host)
            spec = vim.vm.RelocateSpec(host=target.ref, pool=target.pool)
            self._act(site, ref, f"registering VM {name!r} on {host!r}", ref.RelocateVM_Task, spec)
        self.power_on(vm_id)

    def migrate_vm(self, vm_id: str, host: str) -> None:
        """MigrateVM_Task (vMotion) for a running VM, RelocateVM_Task for one that is off."""
        site, ref, info, target, props = self._placement(vm_id, host)
        name = info.vm.name
        if info.vm.host == host:
            return
        source = site.last_view.hosts.get(info.vm.host) if site.last_view else None
        if source is not None:
            _require_available(source.host, f"moving VM {name!r} off its host")
        _require_available(target.host, f"moving VM {name!r}")
        _require_reach(info.vm, target.host)
        what = f"moving VM {name!r} to {host!r}"
        if POWER.get(str(props.get("runtime.powerState"))) is PowerState.ON:
            priority = vim.VirtualMachine.MovePriority.defaultPriority
            self._act(
                site, ref, f"{what} live", ref.MigrateVM_Task, target.pool, target.ref, priority
            )
        else:
            spec = vim.vm.RelocateSpec(host=target.ref, pool=target.pool)
            self._act(site, ref, what, ref.RelocateVM_Task, spec)

    def _placement(self, vm_id: str, host: str) -> tuple[_Site, Any, VMInfo, HostInfo, Any]:
        """The VM as the site reads it now, the target host of its site, and its power."""
        site, ref = self._vm_ref(vm_id)
        if not isinstance(host, str) or not host:
            raise ValidationError.of("host", f"must be a host name, got {host!r}")
        view = self._view(site)
        info = view.vm(ref._moId)
        if info is None:
            raise NotFoundError(f"no VM with id {vm_id!r}")
        target = view.hosts.get(host)
        if target is None:
            raise NotFoundError(f"no host {host!r} at site {site.settings.site!r}")
        return site, ref, info, target, info.props

    def _host_name(self, site: _Site, ref: Any) -> str:
        moref = getattr(ref, "_moId", "")
        view = site.last_view
        if view is None or moref not in view.host_names:
            view = self._view(site)
        return view.host_names.get(moref, moref)

    def _datastore_display(self, site: _Site, ref: Any) -> str:
        view = site.last_view or self._view(site)
        return view.datastore_names.get(getattr(ref, "_moId", ""), str(getattr(ref, "_moId", "")))

    # --- task helpers ----------------------------------------------------------------------------

    def _reconfigure(
        self, conn: VCenterConnection, ref: Any, values: Mapping[str, str], what: str
    ) -> None:
        spec = vim.vm.ConfigSpec(extraConfig=_options(values))
        self._forget(conn.settings.site, ref._moId)
        wait_for_task(conn, conn.invoke(what, ref.ReconfigVM_Task, spec), what)

    def _remove_snapshot(self, conn: VCenterConnection, snapshot: Any, what: str) -> None:
        wait_for_task(
            conn,
            conn.invoke(what, snapshot.RemoveSnapshot_Task, removeChildren=False, consolidate=True),
            what,
        )


# --- helpers (no I/O) -------------------------------------------------------------------------


def _require_available(host: Host, what: str) -> None:
    if not host.available:
        raise TransientBackendError(
            f"{what}: host {host.name!r} is {host.connection.value}, power {host.power.value}"
        )


def _require_reach(vm: VM, host: Host) -> None:
    missing = host_lacks(vm, host)
    if missing:
        raise ConflictError(
            f"VM {vm.name!r} cannot run on host {host.name!r}: the host lacks {', '.join(missing)}"
        )


def replica_id_of(vm_id: str) -> str:
    return replica_id(vm_id)


def _options(values: Mapping[str, str]) -> list[Any]:
    return [vim.option.OptionValue(key=key, value=value) for key, value in values.items()]


def _tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        tags = (tags,)
    checked = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise ValidationError.of(
                "sync tags", f"each tag must be a non-empty string, got {tag!r}"
            )
        checked.append(tag)
    return checked


def _ip_configs(configs: Sequence[IPConfig] | None, item: str) -> tuple[IPConfig, ...] | None:
    if configs is None:
        return None
    if isinstance(configs, IPConfig):
        configs = (configs,)
    checked = tuple(configs)
    for config in checked:
        if not isinstance(config, IPConfig):
            raise ValidationError.of(item, f"expected IPConfig values, got {config!r}")
    if not checked:
        raise ValidationError.of(item, "give at least one IPConfig, or None for DHCP")
    return checked


def _points(replica: str, vm_id: str, tree: Any) -> list[RecoveryPoint]:
    found = []
    stack = list(tree or ())
    while stack:
        node = stack.pop()
        stack.extend(node.childSnapshotList or ())
        point = decode_point(
            replica,
            point_id(vm_id, node.snapshot._moId),
            str(node.name or ""),
            str(node.description or ""),
        )
        if point is not None:
            found.append(point)
    found.sort(key=lambda p: (p.created_at, p.id))
    return found


def _find_nic(devices: Any, mac: str) -> Any:
    for device, found in nics(devices):
        if found == mac:
            return device
    return None


def _nic(devices: Any, mac: str, vm_name: object) -> Any:
    device = _find_nic(devices, mac)
    if device is None:
        raise NotFoundError(f"VM {vm_name!r} has no NIC with MAC {mac}")
    return device


def _point_ids(replica: str, vm_id: str, current: _Current) -> set[str]:
    return {p.id for p in _points(replica, vm_id, current.get("snapshot.rootSnapshotList"))}


def _guest_ip_refusal(current: _Current, mac: str) -> VMFailoverError | None:
    """Why the VM's guest address cannot be set now, or None."""
    name = current.get("name")
    if _find_nic(current.get("config.hardware.device"), mac) is None:
        return NotFoundError(f"VM {name!r} has no NIC with MAC {mac}")
    if POWER.get(str(current.get("runtime.powerState"))) is PowerState.ON:
        return ConflictError(f"VM {name!r} is running: its guest IP is set before power-on")
    if guest_os_of(current.get("config.guestId")) is GuestOS.OTHER:
        return ConflictError(
            f"VM {name!r}: guest OS {current.get('config.guestId')!r} is neither Linux nor "
            "Windows; vSphere guest customization cannot set its address"
        )
    return None


def _guest_ip_pending(current: _Current, mac: str, configs: tuple[IPConfig, ...] | None) -> bool:
    """Whether exactly these settings already wait for the NIC's next boot."""
    pending = decode_guest_ip(extra_config(current.get("config.extraConfig")).get(GUEST_IP, ""))
    return mac in pending and pending[mac] == configs


def _power_on_refusal(current: _Current, reverted: bool) -> VMFailoverError | None:
    name = current.get("name")
    record = ReplicaRecord.decode(extra_config(current.get("config.extraConfig")), f"VM {name!r}")
    if record is not None and record.state in _NOT_FAILED_OVER and not reverted:
        return ConflictError(
            f"VM {name!r} is the replica of {record.source_vm!r} and has not been failed "
            "over: revert it to a recovery point first"
        )
    return None


def _backing_matches(device: Any, network: NetworkInfo) -> bool:
    backing = device.backing
    if network.distributed:
        port = getattr(backing, "port", None)
        return port is not None and port.portgroupKey == network.portgroup_key
    return isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo) and (
        backing.deviceName == network.name
    )


def _disk_pairs(source_devices: Any, replica_devices: Any, what: str) -> list[DiskPair]:
    source_disks = disks(source_devices)
    replica_disks = disks(replica_devices)
    if len(source_disks) != len(replica_disks):
        raise ConflictError(
            f"{what}: the source has {len(source_disks)} disks and the replica "
            f"{len(replica_disks)}; re-create the replica after changing the source's disks"
        )
    pairs = []
    for source, replica in zip(source_disks, replica_disks, strict=True):
        capacity = getattr(source, "capacityInBytes", None) or (source.capacityInKB or 0) * 1024
        pairs.append(
            DiskPair(
                source_file=str(source.backing.fileName),
                replica_file=str(replica.backing.fileName),
                capacity_bytes=int(capacity),
                source_disk_key=int(source.key),
                replica_disk_key=int(replica.key),
            )
        )
    return pairs


def _portgroup_keys(view: SiteView) -> dict[str, str]:
    return {n.portgroup_key: n.name for n in view.networks.values() if n.portgroup_key}


def _datastore_name(site: str, name: str, counts: Mapping[str, int]) -> str:
    """Datastore names are unique per vCenter datacenter, not across sites: qualify repeats."""
    return f"{site}/{name}" if counts.get(name, 0) > 1 else name


def _plain_datastore(view: SiteView, name: str, views: Mapping[str, SiteView | None]) -> str:
    prefix = f"{view.site}/"
    plain = name[len(prefix) :] if name.startswith(prefix) else name
    if plain not in view.datastores:
        raise NotFoundError(f"no datastore {name!r} at site {view.site!r}")
    return plain


def _datastore_ref(view: SiteView, name: str, views: Mapping[str, SiteView | None]) -> Any:
    return view.datastores[_plain_datastore(view, name, views)][0]


def _same_vcenter(a: VCenterConnection, b: VCenterConnection) -> bool:
    if a is b:
        return True
    return str(a.content.about.instanceUuid) == str(b.content.about.instanceUuid)


def _unreachable(view: SiteView) -> SiteView:
    """The last read of a site whose vCenter no longer answers: no host is vouched for."""
    hosts = {
        name: attrs.evolve(
            info, host=attrs.evolve(info.host, connection=ConnectionState.NOT_RESPONDING)
        )
        for name, info in view.hosts.items()
    }
    return attrs.evolve(view, hosts=hosts)
