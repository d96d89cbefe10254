"""Network mapping: production and test tables, isolation of test failovers, inventory checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover.errors import Severity, ValidationError
from vmfailover.model import VM, FailoverKind, Host, Inventory, Network, Nic, Replica, Site
from vmfailover.policy.netmap import NetworkMapping

MAC1 = "00:50:56:00:00:01"
MAC2 = "00:50:56:00:00:02"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def inventory() -> Inventory:
    return Inventory(
        sites=[Site("hq"), Site("dr"), Site("lab")],
        hosts=[Host("esx-hq", "hq"), Host("esx-dr", "dr"), Host("esx-lab", "lab")],
        networks=[
            Network("VM Network", "hq"),
            Network("Backup", "hq"),
            Network("DR Network", "dr"),
            Network("DR Isolated", "dr", isolated=True),
            Network("Backup", "dr"),
            Network("VM Network", "lab", isolated=True),
        ],
        vms=[
            VM("vm-1", "web", "esx-hq", nics=[Nic(MAC1, "VM Network"), Nic(MAC2, "Backup")]),
            VM("vm-2", "db", "esx-hq", nics=[Nic(MAC1, "VM Network")]),
            VM("vm-1r", "web-replica", "esx-dr"),
            VM("vm-3", "orphan", "esx-hq", nics=[Nic(MAC1, "VM Network")]),
        ],
        replicas=[
            Replica("r1", "vm-1", "vm-1r", "esx-dr", CREATED),
            Replica("r2", "vm-2", "vm-1r", "esx-dr", CREATED),
        ],
    )


def mapping(**options: object) -> NetworkMapping:
    return NetworkMapping(
        production={"VM Network": "DR Network", "Backup": "Backup"},
        test={"VM Network": "DR Isolated", "Backup": "DR Isolated"},
        **options,  # type: ignore[arg-type]
    )


def test_target_uses_the_table_of_the_failover_kind() -> None:
    m = mapping()
    assert m.target("VM Network", FailoverKind.PLANNED) == "DR Network"
    assert m.target("VM Network", FailoverKind.REGULAR) == "DR Network"
    assert m.target("VM Network", FailoverKind.TEST) == "DR Isolated"
    assert m.target("VM Network", "test") == "DR Isolated"
    assert m.table("test") == {"VM Network": "DR Isolated", "Backup": "DR Isolated"}


def test_an_unmapped_network_is_a_validation_error_saying_what_to_add() -> None:
    with pytest.raises(ValidationError) as caught:
        NetworkMapping(production={"A": "B"}).target("Storage", FailoverKind.TEST)
    finding = caught.value.findings[0]
    assert finding.item == "network 'Storage'"
    assert finding.message == "has no test mapping"
    assert finding.hint == "add 'Storage' to NetworkMapping(test=...) or set same_name=True"


def test_same_name_fills_in_missing_entries_only() -> None:
    m = NetworkMapping(production={"VM Network": "DR Network"}, same_name=True)
    assert m.target("VM Network", "planned") == "DR Network"
    assert m.target("Backup", "planned") == "Backup"
    assert m.target("VM Network", "test") == "VM Network"


def test_check_is_clean_for_a_good_mapping_and_uses_the_replicas_site() -> None:
    inv = inventory()
    assert mapping().check(inv, ["web", "vm-2"], FailoverKind.PLANNED) == []
    assert mapping().check(inv, [inv.vm("web")], FailoverKind.TEST) == []


def test_check_accepts_a_single_vm() -> None:
    m = NetworkMapping(production={"VM Network": "DR Network"})
    assert m.check(inventory(), "db", "planned") == []
    assert len(m.check(inventory(), inventory().vm("web"), "planned")) == 1


def test_check_names_the_vm_and_nic_of_an_unmapped_network() -> None:
    m = NetworkMapping(production={"VM Network": "DR Network"})
    (finding,) = m.check(inventory(), ["web"], "planned")
    assert finding.item == f"VM 'web' NIC {MAC2}"
    assert finding.message == "network 'Backup' has no production mapping"
    assert finding.blocking


def test_check_reports_a_target_that_does_not_exist_at_the_target_site() -> None:
    m = NetworkMapping(production={"VM Network": "Nowhere", "Backup": "Backup"})
    (finding,) = m.check(inventory(), ["web"], "regular")
    assert finding.item == f"VM 'web' NIC {MAC1}"
    assert "maps to 'Nowhere', which does not exist at site 'dr'" in finding.message
    assert finding.hint == "create 'Nowhere' at 'dr' or map 'VM Network' elsewhere"


def test_a_test_failover_onto_a_production_network_is_refused() -> None:
    m = NetworkMapping(test={"VM Network": "DR Network"})
    (finding,) = m.check(inventory(), ["db"], FailoverKind.TEST)
    assert finding.blocking
    assert finding.item == f"VM 'db' NIC {MAC1}"
    assert "not isolated" in finding.message
    assert "split brain" in finding.message
    assert finding.hint is not None
    assert "allow_non_isolated_test=True" in finding.hint


def test_allow_non_isolated_test_turns_the_refusal_into_a_warning() -> None:
    m = NetworkMapping(test={"VM Network": "DR Network"}, allow_non_isolated_test=True)
    (finding,) = m.check(inventory(), ["db"], FailoverKind.TEST)
    assert finding.severity is Severity.WARNING
    assert "allowed by allow_non_isolated_test" in finding.message


def test_a_production_failover_onto_an_isolated_network_is_a_warning() -> None:
    m = NetworkMapping(production={"VM Network": "DR Isolated"})
    (finding,) = m.check(inventory(), ["db"], FailoverKind.PLANNED)
    assert finding.severity is Severity.WARNING
    assert "clients will not reach the VM" in finding.message


def test_an_explicit_target_site_wins_over_the_replicas() -> None:
    m = NetworkMapping(test={}, same_name=True)
    # At the lab site "VM Network" exists and is isolated.
    assert m.check(inventory(), ["db"], FailoverKind.TEST, target_site="lab") == []
    (finding,) = m.check(inventory(), ["db"], FailoverKind.TEST, target_site="hq")
    assert "not isolated" in finding.message


def test_vms_that_cannot_be_checked_are_findings() -> None:
    findings = mapping().check(inventory(), ["ghost", "orphan", 7], "planned")  # type: ignore[list-item]
    items = [(f.item, f.message) for f in findings]
    assert ("VM 'ghost'", "no VM with id or name 'ghost'") in items
    assert ("VM 'orphan'", "has no replica, so its target site is unknown") in items
    assert ("VM 7", "expected a VM, its id or its name") in items
    assert all(f.blocking for f in findings)


def test_an_unknown_target_site_is_a_finding() -> None:
    (finding,) = mapping().check(inventory(), ["web"], "planned", target_site="mars")
    assert finding.item == "target site 'mars'"
    assert finding.message == "does not exist in the inventory"


def test_resolve_returns_the_checked_network_or_raises() -> None:
    inv = inventory()
    network = mapping().resolve(inv, "dr", "VM Network", "test")
    assert network == Network("DR Isolated", "dr", isolated=True)
    with pytest.raises(ValidationError, match="not isolated"):
        NetworkMapping(test={"VM Network": "DR Network"}).resolve(inv, "dr", "VM Network", "test")
    with pytest.raises(ValidationError, match="has no production mapping"):
        mapping().resolve(inv, "dr", "Storage", "planned")
    allowed = NetworkMapping(test={"VM Network": "DR Network"}, allow_non_isolated_test=True)
    assert allowed.resolve(inv, "dr", "VM Network", "test").name == "DR Network"


@pytest.mark.parametrize(
    ("kwargs", "item", "message"),
    [
        ({"production": ["VM Network"]}, "NetworkMapping production", "expected a mapping"),
        ({"test": {"VM Network": ""}}, "NetworkMapping test['VM Network']", "target network"),
        ({"production": {"": "DR"}}, "NetworkMapping production['']", "source network"),
        ({"production": {"A": 5}}, "NetworkMapping production['A']", "non-empty string"),
        ({"same_name": "yes"}, "NetworkMapping same_name", "must be True or False"),
        ({"allow_non_isolated_test": 1}, "NetworkMapping allow_non_isolated_test", "True or"),
    ],
)
def test_bad_mappings_are_refused_naming_the_field(
    kwargs: dict[str, object], item: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        NetworkMapping(**kwargs)  # type: ignore[arg-type]
    finding = caught.value.findings[0]
    assert finding.item == item
    assert message in finding.message


def test_a_bad_failover_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="'drill' is not one of: planned, test, regular"):
        mapping().target("VM Network", "drill")


def test_the_mapping_is_frozen_and_renders() -> None:
    source = {"VM Network": "DR Network"}
    m = NetworkMapping(production=source, test={"Backup": "DR Isolated"}, same_name=True)
    source["VM Network"] = "changed"
    assert m.production["VM Network"] == "DR Network"
    with pytest.raises(TypeError):
        m.production["x"] = "y"  # type: ignore[index]
    assert m == NetworkMapping(
        production={"VM Network": "DR Network"}, test={"Backup": "DR Isolated"}, same_name=True
    )
    assert hash(m) == hash(
        NetworkMapping(
            production={"VM Network": "DR Network"}, test={"Backup": "DR Isolated"}, same_name=True
        )
    )
    text = str(m)
    assert text.splitlines()[0] == "Network mapping (same_name)"
    assert "(same name)" in text
    assert "production={'VM Network': 'DR Network'}" in repr(m)
    html = NetworkMapping(production={"<a>": "b"})._repr_html_()
    assert "&lt;a&gt;" in html


NAMES = st.sampled_from(["VM Network", "Backup", "DR Network", "DR Isolated", "Storage"])


@given(
    st.dictionaries(NAMES, NAMES),
    st.dictionaries(NAMES, NAMES),
    st.booleans(),
    st.booleans(),
    st.sampled_from(list(FailoverKind)),
)
def test_check_findings_agree_with_target_and_the_inventory(
    production: dict[str, str],
    test: dict[str, str],
    same_name: bool,
    allow: bool,
    kind: FailoverKind,
) -> None:
    m = NetworkMapping(production, test, same_name, allow)
    inv = inventory()
    findings = m.check(inv, ["web", "db"], kind)
    blocking = {f.item for f in findings if f.blocking}
    for vm_name in ("web", "db"):
        for nic in inv.vm(vm_name).nics:
            item = f"VM {vm_name!r} NIC {nic.mac}"
            try:
                name = m.target(nic.network, kind)
            except ValidationError:
                assert item in blocking
                continue
            exists = inv.has_network("dr", name)
            unsafe = (
                exists
                and kind is FailoverKind.TEST
                and not inv.network("dr", name).isolated
                and not allow
            )
            assert (item in blocking) == (not exists or unsafe)
