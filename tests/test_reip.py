"""Re-IP rules: translation, precedence, overlap checks, plans, and every bad input's message."""

from __future__ import annotations

import ipaddress
import itertools
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmfailover.errors import NotFoundError, Severity, ValidationError
from vmfailover.model import VM, Host, Inventory, IPConfig, Network, Nic, Replica, Site
from vmfailover.policy.reip import (
    IPAssignment,
    ReIPAction,
    ReIPOverride,
    ReIPPlan,
    ReIPRule,
    ReIPRules,
    addresses_in_use,
)

IFACE = ipaddress.ip_interface
ADDR = ipaddress.ip_address


def issue_rules() -> ReIPRules:
    return ReIPRules(
        [
            ReIPRule(
                "192.168.1.*",
                "10.0.0.*",
                prefix=24,
                gateway="10.0.0.1",
                dns=["10.0.0.10"],
                dns_suffixes=["dr.example.com"],
            ),
            ReIPRule("172.16.*.*", "172.17.*.*", mask="255.255.0.0", gateway="172.17.0.1"),
            ReIPRule("192.168.10.0/24", "10.10.0.0/24", gateway="10.10.0.1"),
            ReIPRule("2001:db8:1::/64", "2001:db8:9::/64"),
        ]
    )


# --- translation --------------------------------------------------------------------------------


def test_the_issue_example_translates_as_documented() -> None:
    rules = issue_rules()
    assignment = rules.translate("192.168.1.57")
    assert isinstance(assignment, IPAssignment)
    assert assignment.address == IFACE("10.0.0.57/24")
    assert assignment.gateway == ADDR("10.0.0.1")
    assert assignment.dns == (ADDR("10.0.0.10"),)
    assert assignment.dns_suffixes == ("dr.example.com",)
    assert assignment.rule is rules[0]
    assert assignment.config() == IPConfig(
        "10.0.0.57/24", "10.0.0.1", ["10.0.0.10"], ["dr.example.com"]
    )


def test_wildcards_copy_octets_and_the_mask_sets_the_prefix() -> None:
    assignment = issue_rules().translate("172.16.4.9/24")
    assert assignment is not None
    assert assignment.address == IFACE("172.17.4.9/16")


def test_cidr_keeps_host_bits_and_the_source_prefix() -> None:
    rules = issue_rules()
    with_prefix = rules.translate("192.168.10.77/24")
    assert with_prefix is not None
    assert with_prefix.address == IFACE("10.10.0.77/24")
    assert with_prefix.source == IFACE("192.168.10.77/24")
    # An address given without a prefix lands in the rule's own subnet.
    bare = rules.translate(ADDR("192.168.10.77"))
    assert bare is not None
    assert bare.address == IFACE("10.10.0.77/24")


def test_ipv6_cidr_and_last_hextet_wildcard() -> None:
    rules = ReIPRules(
        [
            ReIPRule("2001:db8:1::/64", "2001:db8:9::/64"),
            ReIPRule("2001:db8:2::*", "2001:db8:a::*", prefix=64, gateway="2001:db8:a::1"),
        ]
    )
    first = rules.translate("2001:db8:1::abcd:1/64")
    assert first is not None
    assert first.address == IFACE("2001:db8:9::abcd:1/64")
    second = rules.translate("2001:db8:2::beef")
    assert second is not None
    assert second.address == IFACE("2001:db8:a::beef/64")
    assert second.gateway == ADDR("2001:db8:a::1")
    assert rules.translate("2001:db8:2::1:beef") is None


def test_unmatched_addresses_and_other_versions_translate_to_none() -> None:
    rules = issue_rules()
    assert rules.translate("8.8.8.8") is None
    assert rules.translate("2001:db8:2::1") is None
    assert rules.match("8.8.8.8") is None


def test_zero_is_a_literal_octet() -> None:
    rule = ReIPRule("192.168.0.*", "10.0.0.*")
    assert rule.matches("192.168.0.9")
    assert not rule.matches("192.168.3.9")


def test_the_most_specific_rule_wins_whatever_the_order() -> None:
    broad = ReIPRule("10.0.0.0/8", "20.0.0.0/8")
    middle = ReIPRule("10.1.*.*", "30.1.*.*")
    narrow = ReIPRule("10.1.*.5", "40.1.*.5")
    single = ReIPRule("10.1.2.5", "50.1.2.5")
    for order in itertools.permutations([broad, middle, narrow, single]):
        rules = ReIPRules(order)
        assert rules.match("10.2.3.4") is broad
        assert rules.match("10.1.3.4") is middle
        assert rules.match("10.1.3.5") is narrow
        assert rules.match("10.1.2.5") is single


def test_apply_refuses_an_address_outside_the_rule() -> None:
    rule = ReIPRule("192.168.1.*", "10.0.0.*")
    with pytest.raises(ValidationError, match=r"192\.168\.2\.1 does not match the source"):
        rule.apply("192.168.2.1")


def test_a_gateway_outside_the_result_subnet_is_refused_at_translation() -> None:
    rule = ReIPRule("192.168.10.0/24", "10.10.0.0/24", gateway="10.10.0.1")
    with pytest.raises(ValidationError) as caught:
        rule.apply("192.168.10.200/25")
    finding = caught.value.findings[0]
    assert "192.168.10.0/24" in finding.item
    assert "does not contain the gateway 10.10.0.1" in finding.message
    assert finding.hint == "give the rule prefix=24 so results land in one subnet"


def test_translate_refuses_what_is_not_an_address() -> None:
    with pytest.raises(ValidationError, match="is not an IP address") as caught:
        issue_rules().translate("192.168.1.x")
    assert caught.value.findings[0].hint is not None
    with pytest.raises(ValidationError, match="is not an IP address"):
        issue_rules().translate(42)  # type: ignore[arg-type]


# --- bad rules ----------------------------------------------------------------------------------

BAD_RULES = [
    (("192.168.1", "10.0.0.1"), {}, "source '192.168.1' has 3 octets", "write four octets"),
    (("192.168.1.256", "10.0.0.1"), {}, r"octet 4 \(256\) is greater than 255", "0-255"),
    (("192.*.1.**", "10.*.1.*"), {}, r"octet 4 \('\*\*'\) is neither", "number 0-255 or as"),
    (("192.168.01.*", "10.0.1.*"), {}, "has a leading zero", "write 1"),
    (("*.*.*.*", "10.0.0.1"), {}, r"source has \* in octets 1, 2, 3, 4 and the target in no", ""),
    (("192.168.*.5", "10.0.0.*"), {}, r"\* in octets 3 and the target in|\* in octet 3 ", ""),
    (("10.0.0.0/8", "2001:db8::/64"), {}, "source is IPv4 and target IPv6", "one rule per"),
    (("10.0.0.0/8", "11.0.0.0/16"), {}, "source prefix /8 and target prefix /16 differ", ""),
    (("10.0.0.1/8", "11.0.0.0/8"), {}, "has host bits set", "write the block as 10.0.0.0/8"),
    (("10.0.0.0/33", "11.0.0.0/33"), {}, "is not a valid CIDR block", "write it like"),
    (("192.168.1.*", "10.0.0.0/24"), {}, "written as wildcard and target as cidr", "both as"),
    (("192.168.1.0/*", "10.0.0.0/24"), {}, r"mixes \* with a /prefix", "either"),
    (("2001:db8::*:1", "2001:db8::*:2"), {}, "only for the last group", "2001:db8:1::*"),
    (("2001:db8:*", "2001:db9:*"), {}, "is not a valid IPv6 pattern", "write it like"),
    (("fe80::*%eth0", "fe80::*"), {}, r"has a scope", "without it"),
    (("", "10.0.0.*"), {}, "source is empty", "write it like"),
    ((None, "10.0.0.*"), {}, "source must be a string", "write it like"),
    (("192.168.1.*", "10.0.0.*"), {"gateway": "10.0.1.1", "prefix": 24}, "outside", "inside"),
    (("192.168.1.*", "10.0.0.*"), {"gateway": "10.0.1.1"}, r"outside the resulting subnet", ""),
    (("192.168.*.5", "10.0.*.5"), {"prefix": 24, "gateway": "10.0.0.1"}, "many /24 subnets", ""),
    (("192.168.1.*", "10.0.0.*"), {"gateway": "2001:db8::1"}, "is IPv6, the rule IPv4", ""),
    (("192.168.1.*", "10.0.0.*"), {"gateway": "ten"}, "gateway 'ten' is not an IP", ""),
    (("192.168.1.*", "10.0.0.*"), {"dns": ["10.0.0.300"]}, "DNS server '10.0.0.300' is not", ""),
    (("192.168.1.*", "10.0.0.*"), {"dns": "2001:db8::53"}, "is IPv6, the rule IPv4", ""),
    (("192.168.1.*", "10.0.0.*"), {"dns": 5}, "dns 5 is not a list of addresses", "dns=["),
    (("192.168.1.*", "10.0.0.*"), {"prefix": 33}, "prefix must be a whole number 0-32", ""),
    (("192.168.1.*", "10.0.0.*"), {"prefix": True}, "prefix must be a whole number", ""),
    (("192.168.1.*", "10.0.0.*"), {"prefix": 24, "mask": "255.0.0.0"}, "gives both", "not both"),
    (("192.168.1.*", "10.0.0.*"), {"mask": "255.0.255.0"}, "is not a netmask", "contiguous"),
    (("2001:db8::*", "2001:db9::*"), {"mask": "255.255.0.0"}, "mask is for IPv4", "prefix=64"),
    (("192.168.1.*", "10.0.0.*"), {"dns_suffixes": ["dr example"]}, "without spaces", ""),
]


@pytest.mark.parametrize(("args", "kwargs", "message", "hint"), BAD_RULES)
def test_bad_rules_are_refused_naming_the_rule_and_what_to_change(
    args: tuple[object, object], kwargs: dict[str, object], message: str, hint: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ReIPRule(*args, **kwargs)  # type: ignore[arg-type]
    findings = caught.value.findings
    assert any(re.search(message, f.message) for f in findings), findings
    for finding in findings:
        assert finding.item.startswith("rule ")
        assert finding.severity is Severity.ERROR
        assert finding.hint, finding
    source = args[0]
    if isinstance(source, str) and source:
        assert repr(source) in findings[0].item
    if hint:
        assert any(hint in (f.hint or "") for f in findings), findings


def test_every_problem_of_a_rule_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        ReIPRule("192.168.1", "10.0.0.256")
    assert len(caught.value.findings) == 2
    assert "2 problems" in str(caught.value)


def test_a_rule_set_needs_rules() -> None:
    with pytest.raises(ValidationError, match="is not a ReIPRule") as caught:
        ReIPRules([ReIPRule("10.0.0.*", "11.0.0.*"), "12.0.0.* -> 13.0.0.*"])  # type: ignore[list-item]
    assert caught.value.findings[0].item == "rule 2"
    with pytest.raises(ValidationError, match="expected a list of ReIPRule"):
        ReIPRules(ReIPRule("10.0.0.*", "11.0.0.*"))  # type: ignore[arg-type]


def test_partial_overlaps_are_refused_naming_both_rules_and_an_address() -> None:
    with pytest.raises(ValidationError) as caught:
        ReIPRules(
            [
                ReIPRule("10.0.0.0/8", "20.0.0.0/8"),
                ReIPRule("192.168.*.5", "10.0.*.5"),
                ReIPRule("192.168.1.0/24", "10.1.1.0/24"),
            ]
        )
    (finding,) = caught.value.findings
    assert finding.item == "rule 3 ('192.168.1.0/24' -> '10.1.1.0/24')"
    assert "rule 2 ('192.168.*.5' -> '10.0.*.5')" in finding.message
    assert "both match 192.168.1.5" in finding.message
    assert finding.hint is not None
    assert "inside the other" in finding.hint


def test_duplicates_are_refused_even_in_another_form() -> None:
    with pytest.raises(ValidationError) as caught:
        ReIPRules([ReIPRule("192.168.1.*", "10.0.0.*"), ReIPRule("192.168.1.0/24", "10.9.0.0/24")])
    (finding,) = caught.value.findings
    assert finding.item == "rule 2 ('192.168.1.0/24' -> '10.9.0.0/24')"
    assert "matches the same addresses as rule 1" in finding.message
    assert finding.hint == "remove one of the two"


def test_ipv6_duplicates_are_refused_and_versions_never_clash() -> None:
    with pytest.raises(ValidationError, match=r"same addresses .* 2001:db8:1::"):
        ReIPRules(
            [ReIPRule("2001:db8:1::*", "2001:db8:2::*"), ReIPRule("2001:db8:1::/112", "::/112")]
        )
    # 0.0.0.0/0 and ::/0 both match "everything" but of different versions.
    assert len(ReIPRules([ReIPRule("0.0.0.0/0", "0.0.0.0/0"), ReIPRule("::/0", "::/0")])) == 2


def test_many_conflicts_are_capped_in_the_message() -> None:
    rules = [ReIPRule(f"10.{i}.*.5", f"20.{i}.*.5") for i in range(30)]
    rules += [ReIPRule(f"10.{i}.1.0/24", f"30.{i}.1.0/24") for i in range(30)]
    with pytest.raises(ValidationError) as caught:
        ReIPRules(rules)
    assert len(caught.value.findings) == 26
    assert caught.value.findings[-1].message == "5 more conflicts not listed"


# --- rendering ----------------------------------------------------------------------------------


def test_rules_render_as_text_and_html() -> None:
    rules = issue_rules()
    text = str(rules)
    assert text.splitlines()[0] == "Re-IP rules (4)"
    assert "192.168.1.*" in text
    assert "dr.example.com" in text
    html = ReIPRules([ReIPRule("10.0.0.*", "11.0.0.*", description="<lab>")])._repr_html_()
    assert "&lt;lab&gt;" in html
    assert "<lab>" not in html
    assert repr(rules[0]).startswith("ReIPRule('192.168.1.*', '10.0.0.*', prefix=24")
    assert str(rules[0]) == "rule '192.168.1.*' -> '10.0.0.*'"
    assert rules.label(2) == "rule 3 ('192.168.10.0/24' -> '10.10.0.0/24')"
    assert repr(rules).startswith("ReIPRules([ReIPRule(")


# --- plans --------------------------------------------------------------------------------------

MAC1 = "00:50:56:00:00:01"
MAC2 = "00:50:56:00:00:02"


def vm(name: str, *nics: Nic, vm_id: str | None = None, host: str = "esx-a") -> VM:
    return VM(vm_id or f"id-{name}", name, host, nics=nics)


def static(mac: str, *addresses: str, gateway: str | None = None, network: str = "Prod") -> Nic:
    configs = [IPConfig(a, gateway, ["192.168.1.53"]) for a in addresses]
    return Nic(mac, network, configs)


def plan_rules() -> ReIPRules:
    return ReIPRules(
        [
            ReIPRule("192.168.1.*", "10.0.0.*", gateway="10.0.0.1", dns=["10.0.0.53"]),
            ReIPRule("192.168.2.0/24", "10.0.2.0/24"),
        ]
    )


def test_plan_translates_static_nics_and_keeps_dhcp() -> None:
    web = vm(
        "web", static(MAC1, "192.168.1.10/24", gateway="192.168.1.1"), Nic(MAC2, "Prod", dhcp=True)
    )
    plan = plan_rules().plan([web])
    assert isinstance(plan, ReIPPlan)
    first, second = plan.entries
    assert first.action is ReIPAction.RULES
    assert first.new == (IPConfig("10.0.0.10/24", "10.0.0.1", ["10.0.0.53"]),)
    assert first.old == web.nics[0].ip_configs
    assert first.changed
    assert second.action is ReIPAction.DHCP
    assert second.new_dhcp
    assert not second.changed
    assert plan.findings == ()
    assert not plan.blocking
    assert plan.entry("web", MAC1) is first
    assert plan.entry("id-web", MAC2.upper()) is second
    with pytest.raises(NotFoundError, match="no NIC"):
        plan.entry("web", "00:50:56:00:00:09")


def test_an_unmatched_static_address_is_kept_with_a_warning() -> None:
    db = vm("db", static(MAC1, "172.20.0.5/16"))
    plan = plan_rules().plan([db])
    (entry,) = plan.entries
    assert entry.action is ReIPAction.KEPT
    assert entry.new == entry.old
    assert entry.assignments == (None,)
    (finding,) = plan.findings
    assert finding.severity is Severity.WARNING
    assert finding.item == f"VM 'db' NIC {MAC1}"
    assert "no re-IP rule matches the static address 172.20.0.5/16" in finding.message
    assert not plan.blocking


def test_a_nic_with_several_addresses_is_translated_address_by_address() -> None:
    app = vm("app", static(MAC1, "192.168.1.10/24", "172.20.0.5/16"))
    plan = plan_rules().plan([app])
    (entry,) = plan.entries
    assert [str(c.address) for c in entry.new] == ["10.0.0.10/24", "172.20.0.5/16"]
    assert entry.assignments[0] is not None
    assert entry.assignments[1] is None
    assert [f.severity for f in plan.findings] == [Severity.WARNING]


def test_two_nics_getting_one_address_is_an_error_naming_both() -> None:
    a = vm("a", static(MAC1, "192.168.1.10/24"))
    b = vm("b", static(MAC1, "192.168.2.10/24"))
    rules = ReIPRules([ReIPRule("192.168.1.*", "10.0.0.*"), ReIPRule("192.168.2.*", "10.0.0.*")])
    plan = rules.plan([a, b])
    assert plan.blocking
    assert len(plan.errors) == 2
    for finding in plan.errors:
        assert "would get 10.0.0.10" in finding.message
        assert "VM 'a'" in finding.message
        assert "VM 'b'" in finding.message


def test_a_collision_with_an_address_in_use_is_an_error() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"))
    plan = plan_rules().plan([web], in_use={"10.0.0.10": "VM 'printer' NIC x"})
    (finding,) = plan.errors
    assert finding.item == f"VM 'web' NIC {MAC1}"
    assert "already in use at the target site by VM 'printer' NIC x" in finding.message
    plain = plan_rules().plan([web], in_use=[ADDR("10.0.0.10")])
    assert "already in use" in plain.errors[0].message
    assert not plan_rules().plan([web], in_use=["10.0.0.11"]).findings
    with pytest.raises(ValidationError, match="not IP addresses: 'nope'"):
        plan_rules().plan([web], in_use=["nope"])


def test_losing_the_gateway_or_dns_is_a_warning() -> None:
    web = vm("web", static(MAC1, "192.168.2.10/24", gateway="192.168.2.1"))
    plan = plan_rules().plan([web])
    (finding,) = plan.findings
    assert finding.severity is Severity.WARNING
    assert "without gateway (was 192.168.2.1) and DNS servers (were 192.168.1.53)" in (
        finding.message
    )


def test_a_rule_result_that_misses_the_gateway_is_an_error_in_the_plan() -> None:
    rules = ReIPRules([ReIPRule("192.168.10.0/24", "10.10.0.0/24", gateway="10.10.0.1")])
    plan = rules.plan([vm("x", static(MAC1, "192.168.10.200/25"))])
    (finding,) = plan.errors
    assert finding.item == f"VM 'x' NIC {MAC1}"
    assert "does not contain the gateway" in finding.message
    assert finding.hint is not None


def test_overrides_win_over_rules_and_can_switch_dhcp() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"), Nic(MAC2, "Prod", dhcp=True))
    plan = plan_rules().plan(
        [web],
        overrides=[
            ReIPOverride("web", MAC1, ["10.9.9.9/24"]),
            ReIPOverride("id-web", MAC2.replace(":", "-"), IPConfig("10.9.9.10/24", "10.9.9.1")),
        ],
    )
    first, second = plan.entries
    assert first.action is ReIPAction.OVERRIDE
    assert first.new == (IPConfig("10.9.9.9/24"),)
    assert second.action is ReIPAction.OVERRIDE
    assert second.old_dhcp
    assert not second.new_dhcp
    assert second.new == (IPConfig("10.9.9.10/24", "10.9.9.1"),)
    to_dhcp = plan_rules().plan([web], overrides=[ReIPOverride("web", MAC1, dhcp=True)])
    assert to_dhcp.entries[0].new_dhcp
    assert to_dhcp.entries[0].new == ()
    assert plan.findings == ()


def test_overrides_that_match_nothing_are_findings() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"))
    twin_a = vm("twin", static(MAC1, "192.168.1.11/24"), vm_id="t1")
    twin_b = vm("twin", static(MAC1, "192.168.1.12/24"), vm_id="t2", host="esx-b")
    plan = plan_rules().plan(
        [web, twin_a, twin_b],
        overrides=[
            ReIPOverride("ghost", MAC1, ["10.1.1.1/24"]),
            ReIPOverride("web", MAC2, ["10.1.1.2/24"]),
            ReIPOverride("twin", MAC1, ["10.1.1.3/24"]),
            ReIPOverride("t2", MAC1, ["10.1.1.4/24"]),
        ],
    )
    messages = [(f.item, f.message) for f in plan.errors]
    assert (f"override for VM 'ghost' NIC {MAC1}", "no VM in the plan has this name or id") in (
        messages
    )
    assert (f"override for VM 'web' NIC {MAC2}", "VM 'web' has no NIC with this MAC") in messages
    assert (f"override for VM 'twin' NIC {MAC1}", "2 VMs in the plan are named 'twin'") in messages
    assert plan.entry("t2", MAC1).new == (IPConfig("10.1.1.4/24"),)


def test_the_same_override_twice_is_refused() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"))
    with pytest.raises(ValidationError, match="is given twice"):
        plan_rules().plan([web], overrides=[ReIPOverride("web", MAC1, dhcp=True)] * 2)
    with pytest.raises(ValidationError, match="is given twice"):
        plan_rules().plan(
            [web],
            overrides=[
                ReIPOverride("web", MAC1, dhcp=True),
                ReIPOverride("id-web", MAC1, dhcp=True),
            ],
        )


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("web", "zz:50:56:00:00:01", ["10.0.0.1/24"]), {}, "is not a MAC address"),
        (("", MAC1, ["10.0.0.1/24"]), {}, "vm must be the VM's name or id"),
        (("web", MAC1), {}, "says nothing"),
        (("web", MAC1, ["10.0.0.1/24"]), {"dhcp": True}, "both dhcp=True and static"),
        (("web", MAC1, ["10.0.0.1"]), {}, "has no prefix length"),
        (("web", MAC1, ["10.0.0.1/24"]), {"dhcp": "yes"}, "dhcp must be True or False"),
    ],
)
def test_bad_overrides_are_refused_naming_the_nic(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ReIPOverride(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.findings[0].item.startswith("override for VM")
    assert caught.value.findings[0].hint or "must be" in message


def test_plan_refuses_what_is_not_a_vm_or_override() -> None:
    with pytest.raises(ValidationError, match="vms: item 1 must be a VM, got 'web'"):
        plan_rules().plan(["web"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="expected a VM or a list of them, got None"):
        plan_rules().plan(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="overrides: item 1 must be a ReIPOverride"):
        plan_rules().plan([], overrides=[("web", MAC1)])  # type: ignore[list-item]


def test_plan_and_rules_accept_single_items() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"))
    single = plan_rules().plan(web, overrides=ReIPOverride("web", MAC1, dhcp=True))
    assert single.entries[0].new_dhcp
    rule = ReIPRule("10.0.0.*", "11.0.0.*", dns=None)
    assert rule.dns == ()
    assert ReIPRule("10.0.0.*", "11.0.0.*", dns="11.0.0.53").dns == (ADDR("11.0.0.53"),)


def test_a_nic_without_addresses_is_left_alone() -> None:
    plan = plan_rules().plan([vm("bare", Nic(MAC1, "Prod"))])
    assert plan.entries[0].action is ReIPAction.NONE
    assert "no address" in str(plan)


def test_plan_renders_rows_and_findings() -> None:
    web = vm("web", static(MAC1, "192.168.1.10/24"), Nic(MAC2, "Prod", dhcp=True))
    db = vm("db<1>", static(MAC1, "172.20.0.5/16"))
    plan = plan_rules().plan([web, db])
    text = str(plan)
    assert text.splitlines()[0] == "Re-IP plan: 3 NICs, 0 errors, 1 warnings"
    assert "192.168.1.10/24" in text
    assert "10.0.0.10/24" in text
    assert "192.168.1.* -> 10.0.0.*" in text
    assert "stays on DHCP" in text
    assert "no rule: kept" in text
    assert "warning: VM 'db<1>'" in text
    html = plan._repr_html_()
    assert "db&lt;1&gt;" in html
    assert "Findings" in html


def test_addresses_in_use_reads_the_target_site_and_skips_the_replicas() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    inventory = Inventory(
        sites=[Site("a"), Site("b")],
        hosts=[Host("esx-a", "a"), Host("esx-b", "b")],
        networks=[Network("Prod", "a"), Network("DR", "b")],
        vms=[
            vm("web", static(MAC1, "192.168.1.10/24")),
            vm("web-replica", static(MAC1, "192.168.1.10/24", network="DR"), host="esx-b"),
            vm("printer", static(MAC2, "10.0.0.10/24", network="DR"), host="esx-b"),
        ],
        replicas=[Replica("r1", "id-web", "id-web-replica", "esx-b", created)],
    )
    held = addresses_in_use(inventory, "b", exclude=[inventory.vm("web"), "ghost"])
    assert held == {ADDR("10.0.0.10"): f"VM 'printer' NIC {MAC2}"}
    everything = addresses_in_use(inventory, "b")
    assert ADDR("192.168.1.10") in everything
    plan = plan_rules().plan([inventory.vm("web")], in_use=held)
    assert "already in use at the target site by VM 'printer'" in plan.errors[0].message
    with pytest.raises(NotFoundError):
        addresses_in_use(inventory, "nowhere")


# --- properties ---------------------------------------------------------------------------------

OCTET_OR_STAR = st.one_of(st.just("*"), st.integers(0, 255).map(str))


@st.composite
def any_rule(draw: st.DrawFn) -> ReIPRule:
    """A random valid rule of either version and either form."""
    version = draw(st.sampled_from([4, 6]))
    cidr = draw(st.booleans())
    if version == 4 and not cidr:
        source = [draw(OCTET_OR_STAR) for _ in range(4)]
        target = [p if p == "*" else str(draw(st.integers(0, 255))) for p in source]
        return ReIPRule(".".join(source), ".".join(target))
    if version == 6 and not cidr:
        star = draw(st.booleans())
        groups = [f"{draw(st.integers(0, 0xFFFF)):x}" for _ in range(16)]
        source, target = groups[:8], groups[8:]
        if star:
            source[-1] = target[-1] = "*"
        return ReIPRule(":".join(source), ":".join(target))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(0, bits))
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    net = network((draw(st.integers(0, 2**bits - 1)), prefix), strict=False)
    other = network((draw(st.integers(0, 2**bits - 1)), prefix), strict=False)
    return ReIPRule(str(net), str(other))


def member(rule: ReIPRule, noise: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    pattern = rule.source_pattern
    number = pattern.value | (noise & pattern.free)
    return ADDR(number) if rule.version == 4 else ipaddress.IPv6Address(number)


@given(any_rule(), st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1))
def test_translation_is_injective_within_a_rule_and_copies_the_free_part(
    rule: ReIPRule, noise_a: int, noise_b: int
) -> None:
    a, b = member(rule, noise_a), member(rule, noise_b)
    new_a, new_b = rule.apply(a).address.ip, rule.apply(b).address.ip
    assert (new_a == new_b) == (a == b)
    free = rule.source_pattern.free
    assert int(new_a) & free == int(a) & free
    # The reverse rule maps the result back: each rule is a bijection between its two sets.
    back = ReIPRule(rule.target, rule.source)
    assert back.apply(new_a).address.ip == a
    assert ReIPRules([rule]).translate(a) == rule.apply(a)


@given(
    st.lists(OCTET_OR_STAR, min_size=4, max_size=4),
    st.lists(st.integers(0, 255), min_size=4, max_size=4),
)
def test_each_star_in_the_target_takes_the_source_octet(
    pattern: list[str], octets: list[int]
) -> None:
    target = ["*" if p == "*" else "7" for p in pattern]
    rule = ReIPRule(".".join(pattern), ".".join(target))
    address = ".".join(str(o) if p == "*" else p for p, o in zip(pattern, octets, strict=True))
    result = str(rule.apply(address).address.ip).split(".")
    for position, part in enumerate(pattern):
        expected = address.split(".")[position] if part == "*" else "7"
        assert result[position] == expected


# An independent oracle: every rule's source is a product of one interval per octet (hextet),
# computed from the rule text alone, without the bit masks the library uses.


def intervals(text: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    if "/" in text:
        net = ipaddress.ip_network(text)
        size = 8 if net.version == 4 else 16
        count = 4 if net.version == 4 else 8
        base = net.network_address
        parts = (
            [int(p) for p in str(base).split(".")]
            if net.version == 4
            else [int(h, 16) for h in base.exploded.split(":")]
        )
        result = []
        for i, part in enumerate(parts):
            fixed = min(size, max(0, net.prefixlen - size * i))
            span = 2 ** (size - fixed)
            result.append((part, part + span - 1))
        assert len(result) == count
        return net.version, tuple(result)
    if ":" in text:
        star = text.endswith("*")
        exploded = ipaddress.IPv6Address(text[:-1] + "0" if star else text).exploded
        groups = [(int(h, 16), int(h, 16)) for h in exploded.split(":")]
        if star:
            groups[-1] = (0, 0xFFFF)
        return 6, tuple(groups)
    return 4, tuple((0, 255) if p == "*" else (int(p), int(p)) for p in text.split("."))


def oracle_relation(a: str, b: str) -> str:
    """'disjoint', 'equal', 'a_in_b', 'b_in_a' or 'partial'."""
    va, ia = intervals(a)
    vb, ib = intervals(b)
    if va != vb:
        return "disjoint"
    if any(max(x[0], y[0]) > min(x[1], y[1]) for x, y in zip(ia, ib, strict=True)):
        return "disjoint"
    a_in_b = all(y[0] <= x[0] and x[1] <= y[1] for x, y in zip(ia, ib, strict=True))
    b_in_a = all(x[0] <= y[0] and y[1] <= x[1] for x, y in zip(ia, ib, strict=True))
    if a_in_b and b_in_a:
        return "equal"
    if a_in_b:
        return "a_in_b"
    if b_in_a:
        return "b_in_a"
    return "partial"


def oracle_contains(text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    version, box = intervals(text)
    if version != address.version:
        return False
    parts = (
        [int(p) for p in str(address).split(".")]
        if version == 4
        else [int(h, 16) for h in address.exploded.split(":")]
    )
    return all(lo <= p <= hi for p, (lo, hi) in zip(parts, box, strict=True))


def oracle_size(text: str) -> int:
    size = 1
    for lo, hi in intervals(text)[1]:
        size *= hi - lo + 1
    return size


@st.composite
def small_rule(draw: st.DrawFn) -> ReIPRule:
    """Rules from a small space, so that overlaps of every kind are common."""
    kind = draw(st.sampled_from(["wild4", "cidr4", "wild6", "cidr6"]))
    if kind == "wild4":
        parts = [
            draw(st.sampled_from(["10", "10", "*"])),
            draw(st.sampled_from(["0", "1", "*"])),
            draw(st.sampled_from(["0", "1", "2", "*"])),
            draw(st.sampled_from(["0", "5", "130", "*"])),
        ]
        source = ".".join(parts)
        return ReIPRule(source, ".".join("20" if p == "10" else p for p in parts))
    if kind == "cidr4":
        third, fourth = draw(st.integers(0, 2)), draw(st.sampled_from([0, 5, 128, 130]))
        prefix = draw(st.sampled_from([8, 15, 16, 23, 24, 25, 30, 32]))
        net = ipaddress.ip_network(
            f"10.{draw(st.integers(0, 1))}.{third}.{fourth}/{prefix}", strict=False
        )
        return ReIPRule(str(net), "20" + str(net)[str(net).index(".") :])
    if kind == "wild6":
        middle = draw(st.sampled_from(["0", "1"]))
        last = draw(st.sampled_from(["0", "5", "*"]))
        return ReIPRule(f"2001:db8:{middle}::{last}", f"2001:db9:{middle}::{last}")
    prefix = draw(st.sampled_from([32, 48, 64, 112, 128]))
    net = ipaddress.ip_network(f"2001:db8:{draw(st.integers(0, 1))}::/{prefix}", strict=False)
    return ReIPRule(str(net), str(net).replace("2001:db8:", "2001:db9:", 1))


ORACLE_FINDING = re.compile(
    r"rule (\d+) \('([^']*)' -> .*(?:both match|for example) ([0-9a-f.:]+)\)?$"
)


@settings(max_examples=200)
@given(st.lists(small_rule(), min_size=2, max_size=6))
def test_a_rule_set_builds_exactly_when_its_rules_nest(rules: list[ReIPRule]) -> None:
    pairs = list(itertools.combinations(range(len(rules)), 2))
    relations = {(i, j): oracle_relation(rules[i].source, rules[j].source) for i, j in pairs}
    bad = {pair for pair, relation in relations.items() if relation in ("equal", "partial")}
    if not bad:
        assert len(ReIPRules(rules)) == len(rules)  # nested rules always build
        return
    with pytest.raises(ValidationError) as caught:
        ReIPRules(rules)
    for finding in caught.value.findings:
        named = re.match(r"rule (\d+)", finding.item)
        found = ORACLE_FINDING.search(finding.message)
        assert named, finding.item
        assert found, finding.message
        first, second = int(found.group(1)) - 1, int(named.group(1)) - 1
        example = ipaddress.ip_address(found.group(3))
        assert (first, second) in bad
        assert oracle_contains(rules[first].source, example)
        assert oracle_contains(rules[second].source, example)


@settings(max_examples=150)
@given(
    st.lists(small_rule(), min_size=1, max_size=10),
    st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=10),
)
def test_a_rule_set_translates_like_its_single_most_specific_rule(
    candidates: list[ReIPRule], noise: list[int]
) -> None:
    chosen: list[ReIPRule] = []
    for rule in candidates:
        if all(
            oracle_relation(rule.source, kept.source) not in ("equal", "partial") for kept in chosen
        ):
            chosen.append(rule)
    rules = ReIPRules(chosen)  # nested by construction: must build
    probes = [member(rule, n) for rule in chosen for n in noise]
    probes += [ADDR(n & 0xFFFFFFFF) for n in noise] + [ADDR("10.1.2.130"), ADDR("2001:db8::5")]
    for address in probes:
        matching = [rule for rule in chosen if oracle_contains(rule.source, address)]
        if not matching:
            assert rules.translate(address) is None
            continue
        best = min(matching, key=lambda rule: oracle_size(rule.source))
        assert [oracle_size(r.source) for r in matching].count(oracle_size(best.source)) == 1
        assert rules.match(address) is best
        assert rules.translate(address) == best.apply(address)


@given(
    st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(1, 6)), min_size=1, max_size=8),
    st.lists(st.integers(1, 6), max_size=3),
)
def test_every_shared_or_taken_address_in_a_plan_is_an_error_for_each_holder(
    hosts: list[tuple[int, int]], taken: list[int]
) -> None:
    # 192.168.1.x and 192.168.2.x both land in 10.0.0.x; 192.168.3.x matches no rule and is kept.
    rules = ReIPRules(
        [ReIPRule("192.168.1.*", "10.0.0.*"), ReIPRule("192.168.2.0/24", "10.0.0.0/24")]
    )
    vms = [
        vm(f"vm{i}", static(MAC1, f"192.168.{subnet}.{host}/24"))
        for i, (subnet, host) in enumerate(hosts)
    ]
    in_use = [f"10.0.0.{host}" for host in taken]
    plan = rules.plan(vms, in_use=in_use)
    final = [(e.item, e.new[0].address.ip) for e in plan.entries]
    errors = {(f.item, f.message.split(",")[0]) for f in plan.errors}
    for item, address in final:
        shared = sum(1 for _, other in final if other == address) > 1
        in_use_here = str(address) in in_use
        assert ((item, f"would get {address}") in errors) == (shared or in_use_here)
    unmatched = {f.item for f in plan.warnings if f.message.startswith("no re-IP rule matches")}
    for entry, (subnet, _) in zip(plan.entries, hosts, strict=True):
        assert (entry.item in unmatched) == (subnet == 3)
