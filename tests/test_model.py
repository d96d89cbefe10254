"""The model: validated at construction, immutable, equal by value, secrets hidden."""

from __future__ import annotations

import ipaddress
import pickle
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import (
    VM,
    Credentials,
    Datastore,
    FailoverKind,
    Host,
    Inventory,
    IPConfig,
    Network,
    Nic,
    NotFoundError,
    PowerState,
    RecoveryPoint,
    Replica,
    Site,
    ValidationError,
)
from vmfailover.model import as_enum

names = st.text(
    st.characters(categories=("L", "N"), include_characters="-_."), min_size=1, max_size=20
)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda octets: ":".join(f"{o:02x}" for o in octets)
)
ipv4_interfaces = st.builds(
    lambda address, prefix: ipaddress.IPv4Interface((address, prefix)),
    st.integers(1, 2**32 - 2),
    st.integers(8, 30),
)


@st.composite
def vms(draw: st.DrawFn) -> VM:
    nic_macs = draw(st.lists(macs, min_size=0, max_size=3, unique=True))
    nics = tuple(Nic(mac, draw(names), (IPConfig(draw(ipv4_interfaces)),)) for mac in nic_macs)
    return VM(
        id=draw(names),
        name=draw(names),
        host=draw(names),
        power_state=draw(st.sampled_from(PowerState)),
        nics=nics,
        cpu=draw(st.integers(1, 128)),
        memory_mb=draw(st.integers(1, 1 << 20)),
        tags=draw(st.frozensets(names, max_size=3)),
    )


@given(vms())
def test_vm_equality_and_hash_are_by_value(vm: VM) -> None:
    copy = attrs.evolve(vm)
    assert copy == vm
    assert hash(copy) == hash(vm)
    assert copy is not vm


@given(vms(), names)
def test_evolve_changes_only_what_it_names(vm: VM, new_name: str) -> None:
    renamed = attrs.evolve(vm, name=new_name)
    assert renamed.name == new_name
    assert (renamed.id, renamed.host, renamed.nics, renamed.tags) == (
        vm.id,
        vm.host,
        vm.nics,
        vm.tags,
    )
    assert (renamed == vm) == (new_name == vm.name)


@given(vms())
def test_vms_are_frozen(vm: VM) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        vm.name = "other"  # type: ignore[misc]


@given(aware)
def test_timestamps_are_normalised_to_utc_without_changing_the_instant(when: datetime) -> None:
    point = RecoveryPoint(id="rp", replica="r", created_at=when)
    assert point.created_at.tzinfo is UTC
    assert point.created_at == when


@given(st.datetimes(timezones=st.none()))
def test_naive_datetimes_are_refused_naming_the_field(when: datetime) -> None:
    with pytest.raises(ValidationError) as caught:
        RecoveryPoint(id="rp-7", replica="r", created_at=when)
    assert "rp-7" in str(caught.value)
    assert "created_at" in str(caught.value)
    assert "naive" in str(caught.value)


@given(macs)
def test_macs_are_normalised(mac: str) -> None:
    upper_dashes = mac.upper().replace(":", "-")
    assert Nic(upper_dashes, "lan").mac == mac
    assert Nic(mac.replace(":", ""), "lan").mac == mac


@pytest.mark.parametrize(
    "mac", ["", "00:11:22:33:44", "00:11:22:33:44:zz", "00:11-22:33:44:55", "001122334455667"]
)
def test_malformed_macs_are_refused(mac: str) -> None:
    with pytest.raises(ValidationError, match="MAC"):
        Nic(mac, "lan")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("192.168.1.300/24", "not valid"),
        ("192.168.1.5", "no prefix"),
        ("10.0.0.1/33", "not valid"),
        ("fe80::zz/64", "not valid"),
    ],
)
def test_malformed_addresses_are_refused(address: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        IPConfig(address)


def test_gateway_outside_the_subnet_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"outside 192\.168\.1\.0/24"):
        IPConfig("192.168.1.5/24", gateway="192.168.2.1")
    with pytest.raises(ValidationError, match="another IP version"):
        IPConfig("192.168.1.5/24", dns=["2001:db8::1"])


def test_dhcp_nic_cannot_carry_static_addresses() -> None:
    with pytest.raises(ValidationError, match="DHCP"):
        Nic("00:11:22:33:44:55", "lan", (IPConfig("10.0.0.2/24"),), dhcp=True)


def test_bad_numbers_and_enums_are_refused_naming_the_item() -> None:
    with pytest.raises(ValidationError, match=r"VM 'web01'.*cpu"):
        VM(id="vm-1", name="web01", host="h", cpu=0)
    with pytest.raises(ValidationError, match="power_state 'sideways' is not one of"):
        VM(id="vm-1", name="web01", host="h", power_state="sideways")
    with pytest.raises(ValidationError, match="free_bytes"):
        Datastore("ds", "a", capacity_bytes=10, free_bytes=11)
    with pytest.raises(ValidationError, match="name"):
        Site("  ")


def test_one_enum_coercion_for_every_layer() -> None:
    assert as_enum(PowerState, "on") is PowerState.ON
    assert as_enum(PowerState, PowerState.OFF) is PowerState.OFF
    with pytest.raises(ValidationError) as caught:
        as_enum(FailoverKind, "drill", "kind")
    assert str(caught.value) == "kind: 'drill' is not one of: planned, test, regular"
    with pytest.raises(ValidationError) as caught:
        as_enum(FailoverKind, 3, "VM 'db01'", field="kind")
    assert caught.value.findings[0].item == "VM 'db01'"
    assert "kind 3 is not one of: planned, test, regular" in str(caught.value)
    with pytest.raises(ValidationError, match="PowerState"):
        as_enum(PowerState, None)


def _world(*vms: VM, networks: tuple[Network, ...] = (Network("lan", "a"),)) -> Inventory:
    return Inventory(
        sites=(Site("a"), Site("b")),
        hosts=(Host("h-a", "a"), Host("h-b", "b")),
        networks=networks,
        vms=vms,
    )


def test_two_vms_with_one_name_at_one_site_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _world(VM(id="1", name="web01", host="h-a"), VM(id="2", name="web01", host="h-a"))
    assert "VM 'web01'" in str(caught.value)
    assert "site 'a'" in str(caught.value)


def test_the_same_name_at_two_sites_is_fine_and_lookups_say_it_is_ambiguous() -> None:
    inventory = _world(VM(id="1", name="web01", host="h-a"), VM(id="2", name="web01", host="h-b"))
    assert inventory.vm("1").host == "h-a"
    with pytest.raises(NotFoundError, match="ambiguous"):
        inventory.vm("web01")


def test_a_nic_on_a_network_that_does_not_exist_is_refused() -> None:
    vm = VM(id="1", name="db01", host="h-a", nics=(Nic("00:11:22:33:44:55", "storage"),))
    with pytest.raises(ValidationError) as caught:
        _world(vm)
    finding = caught.value.findings[0]
    assert "db01" in finding.item
    assert "00:11:22:33:44:55" in finding.item
    assert "'storage'" in finding.message


def test_inventory_reports_every_problem_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Inventory(
            sites=(Site("a"),),
            hosts=(Host("h", "nowhere"),),
            vms=(VM(id="1", name="x", host="missing"), VM(id="1", name="y", host="missing")),
        )
    assert len(caught.value.findings) >= 3


def test_a_recovery_point_older_than_its_replica_is_refused() -> None:
    created = datetime(2026, 1, 1, 12, tzinfo=UTC)
    replica = Replica(id="r1", source_vm="1", replica_vm="2", target_host="h-b", created_at=created)
    replica.check_point(RecoveryPoint(id="ok", replica="r1", created_at=created))
    with pytest.raises(ValidationError, match="older than its replica 'r1'"):
        replica.check_point(
            RecoveryPoint(id="rp-old", replica="r1", created_at=created - timedelta(seconds=1))
        )
    with pytest.raises(ValidationError, match="belongs to replica"):
        replica.check_point(RecoveryPoint(id="rp-x", replica="r9", created_at=created))


def test_lookups_raise_not_found_naming_the_item() -> None:
    inventory = _world()
    with pytest.raises(NotFoundError, match="'nope'"):
        inventory.vm("nope")
    with pytest.raises(NotFoundError, match="host 'nope'"):
        inventory.host("nope")
    with pytest.raises(NotFoundError, match="network at site 'a'"):
        inventory.network("a", "nope")


@given(st.text(min_size=1))
def test_credentials_never_show_the_secret(secret: str) -> None:
    credentials = Credentials("admin", secret)
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert "admin" in text
        assert "<hidden>" in text
        if len(secret) > 3:
            assert secret not in text.replace("Credentials(username='admin', secret=<hidden>)", "")
    with pytest.raises(TypeError):
        pickle.dumps(credentials)
