"""PowerShell parameter binding and WildcardPattern, checked directly on the binder."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover.testing.hyperv._objects import CmdletError, InputObject
from vmfailover.testing.hyperv.binding import Binder, WildcardPattern
from vmfailover.testing.hyperv.cmdlets import CMDLETS

NS = "Microsoft.HyperV.PowerShell."


def binder(name: str) -> Binder:
    return Binder(CMDLETS[name.casefold()])


def fails(name: str, arguments: list[tuple[str | None, object]]) -> str:
    with pytest.raises(CmdletError) as caught:
        binder(name).bind(arguments)
    return caught.value.fully_qualified_error_id


def vm_input(name: str = "web01") -> InputObject:
    return InputObject(
        ("Deserialized." + NS + "VirtualMachine", "Deserialized.System.Object"),
        {"Name": name, "Id": uuid.uuid4()},
    )


# ------------------------------------------------------------------------- wildcards


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("web*", "WEB01", True),
        ("web?1", "web01", True),
        ("web?1", "web001", False),
        ("web[0-9]1", "web01", True),
        ("web[abc]", "webd", False),
        ("web[1]", "web1", True),
        ("web[1]", "web[1]", False),
        ("web`[1`]", "web[1]", True),
        ("a`*b", "a*b", True),
        ("a`*b", "axb", False),
        ("*", "", True),
        ("x'; Remove-VM * -Force; '", "x'; Remove-VM * -Force; '", True),
    ],
)
def test_wildcard_pattern_matches_like_powershell(pattern: str, text: str, matches: bool) -> None:
    assert WildcardPattern(pattern).is_match(text) is matches


def test_wildcard_pattern_rejects_an_unterminated_bracket() -> None:
    with pytest.raises(ValueError, match="not valid"):
        WildcardPattern("web[1")


@pytest.mark.parametrize(
    ("text", "has"),
    [("web01", False), ("web*", True), ("w?b", True), ("web[1]", True), ("web`[1`]", False)],
)
def test_contains_wildcards_ignores_escaped_characters(text: str, has: bool) -> None:
    assert WildcardPattern.contains_wildcards(text) is has


@given(st.text(max_size=30))
def test_an_escaped_name_matches_itself_and_is_literal(name: str) -> None:
    escaped = WildcardPattern.escape(name)
    assert not WildcardPattern.contains_wildcards(escaped)
    assert WildcardPattern.unescape(escaped) == name
    assert WildcardPattern(escaped).is_match(name)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("given_name", ["Name", "name", "NAME", "-Name", "VMName", "vmname", "Na"])
def test_names_are_case_insensitive_aliases_and_prefixes(given_name: str) -> None:
    bound = binder("Get-VM").bind([(given_name, "web01")])
    assert bound.values["Name"] == ["web01"]
    assert bound.parameter_set == "Name"


def test_a_prefix_of_a_longer_name_binds_when_unique() -> None:
    bound = binder("Enable-VMReplication").bind(
        [
            ("VMN", "web01"),
            ("ReplicaServerN", "hv-b"),
            ("ReplicaServerP", "80"),
            ("AuthT", "kerberos"),
        ]
    )
    assert bound.values["ReplicaServerPort"] == 80
    assert bound.values["AuthenticationType"].name == "Kerberos"


def test_an_exact_name_wins_over_a_prefix_of_another() -> None:
    # -VM is a whole name and also a prefix of -VMName's sets' siblings: exact wins
    bound = binder("Start-VMFailover").bind([("VM", vm_input()), ("Confirm", False)])
    assert bound.parameter_set == "VMObject"


def test_unknown_parameter_is_named_parameter_not_found() -> None:
    assert fails("Get-VM", [("Force", None)]) == (
        "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_ambiguous_prefix_is_ambiguous_parameter() -> None:
    assert fails("Get-VM", [("C", "x")]) == (
        "AmbiguousParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_common_parameters_take_part_in_prefixes() -> None:
    assert fails("Get-VM", [("V", "x")]).startswith("AmbiguousParameter,")
    bound = binder("Get-VM").bind([("ErrorA", "Stop")])
    assert bound.values["ErrorAction"].name == "Stop"
    assert binder("Get-VM").bind([("ea", "silentlycontinue")]).values["ErrorAction"].value == 0


def test_parameter_given_twice_via_alias_is_already_bound() -> None:
    assert fails("Get-VM", [("Name", "a"), ("VMName", "b")]) == (
        "ParameterAlreadyBound,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_whatif_and_confirm_exist_only_on_should_process_cmdlets() -> None:
    assert fails("Get-VM", [("WhatIf", None)]).startswith("NamedParameterNotFound,")
    bound = binder("Start-VM").bind([("Name", "x"), ("cf", False), ("wi", None)])
    assert bound.values["Confirm"] is False
    assert bound.values["WhatIf"] is True


# ---------------------------------------------------------------------- positions


def test_positional_arguments_bind_in_position_order() -> None:
    bound = binder("Enable-VMReplication").bind(
        [(None, "web01"), (None, "hv-b"), (None, 443), (None, "Certificate")]
    )
    assert bound.parameter_set == "VMName"
    assert bound.values["ReplicaServerName"] == "hv-b"
    assert bound.values["AuthenticationType"].name == "Certificate"


def test_a_named_parameter_frees_its_position() -> None:
    bound = binder("Get-VMNetworkAdapter").bind([("VMName", "web01"), (None, "Network*")])
    assert bound.values["Name"] == "Network*"


def test_a_guid_positional_prefers_the_typed_set() -> None:
    ident = uuid.uuid4()
    assert binder("Get-VM").bind([(None, ident)]).parameter_set == "Id"
    assert binder("Get-VM").bind([(None, "web01")]).parameter_set == "Name"


def test_an_object_positional_binds_the_object_set() -> None:
    assert binder("Start-VM").bind([(None, vm_input())]).parameter_set == "VMObject"


def test_too_many_positionals_is_positional_parameter_not_found() -> None:
    assert fails("Get-VM", [(None, "a"), (None, "b")]) == (
        "PositionalParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_code_positions_win_for_connect_vm_network_adapter() -> None:
    bound = binder("Connect-VMNetworkAdapter").bind(
        [(None, "web01"), (None, "nic"), (None, "Prod")]
    )
    assert bound.values["Name"] == ["nic"]
    assert bound.values["SwitchName"] == "Prod"


# -------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("cmdlet", "arguments", "error_id"),
    [
        ("Get-VM", [("Id", "not-a-guid")], "CannotConvertArgumentNoMessage"),
        (
            "Enable-VMReplication",
            [
                ("VMName", "a"),
                ("ReplicaServerName", "b"),
                ("ReplicaServerPort", "eighty"),
                ("AuthenticationType", "Kerberos"),
            ],
            "CannotConvertArgumentNoMessage",
        ),
        (
            "Enable-VMReplication",
            [
                ("VMName", "a"),
                ("ReplicaServerName", "b"),
                ("ReplicaServerPort", 80),
                ("AuthenticationType", "Basic"),
            ],
            "CannotConvertArgumentNoMessage",
        ),
        (
            "Get-VMSwitch",
            [("SwitchType", ["External", "Wireless"])],
            "CannotConvertArgumentNoMessage",
        ),
        (
            "Get-VMNetworkAdapter",
            [("VMName", "a"), ("IsLegacy", "yes")],
            "ParameterArgumentTransformationError",
        ),
        ("Start-VM", [("VM", "web01")], "CannotConvertArgumentNoMessage"),
        ("Get-VM", [("Id", None)], "ParameterArgumentValidationError"),
        ("Start-VM", [("Name", None)], "ParameterArgumentValidationErrorNullNotAllowed"),
        ("Start-VM", [("Name", "")], "ParameterArgumentValidationError"),
    ],
)
def test_bad_values_give_powershell_binding_errors(
    cmdlet: str, arguments: list[tuple[str | None, object]], error_id: str
) -> None:
    assert fails(cmdlet, arguments).split(",")[0] == error_id


def test_conversions_follow_powershell() -> None:
    ident = uuid.uuid4()
    assert binder("Get-VM").bind([("Id", str(ident))]).values["Id"] == ident
    assert (
        binder("Get-VMSwitch").bind([("SwitchType", "internal")]).values["SwitchType"][0].value == 1
    )
    assert (
        binder("Get-VMSwitch").bind([("SwitchType", 2)]).values["SwitchType"][0].name == "External"
    )
    bound = binder("Set-VMReplication").bind([("VMName", "a"), ("RepFreq", " 0x1E ")])
    assert bound.values["ReplicationFrequencySec"] == 30
    assert binder("Stop-VM").bind([("Name", "a"), ("Force", 1)]).values["Force"] is True


# -------------------------------------------------------------------- parameter sets


def test_conflicting_parameters_are_ambiguous_parameter_set() -> None:
    assert fails("Get-VM", [("Name", "a"), ("Id", uuid.uuid4())]) == (
        "AmbiguousParameterSet,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_switch_alone_cannot_choose_among_sets() -> None:
    assert fails("Start-VMFailover", [("AsTest", None)]).startswith("AmbiguousParameterSet,")


def test_missing_mandatory_in_default_set() -> None:
    with pytest.raises(CmdletError) as caught:
        binder("Start-VM").bind([])
    assert caught.value.fully_qualified_error_id == (
        "MissingMandatoryParameter,Microsoft.HyperV.PowerShell.Commands.StartVM"
    )
    assert "Name" in caught.value.message


def test_pipeline_object_binds_by_value_to_the_typed_parameter() -> None:
    bound = binder("Start-VM").bind([], vm_input())
    assert bound.parameter_set == "VMObject"
    assert bound.pipeline_parameter == "VM"
    assert binder("Start-VM").bind([], "web01").parameter_set == "Name"


def test_pipeline_object_binds_by_property_name() -> None:
    thing = InputObject(("Deserialized.Some.Thing",), {"Id": uuid.uuid4()})
    bound = binder("Get-VMSwitch").bind([], thing)
    assert bound.parameter_set == "Id"
    assert bound.values["Id"] == [thing.properties["Id"]]
    # a PSObject parameter taking pipeline input accepts any object, as in PowerShell
    assert binder("Get-VM").bind([], thing).parameter_set == "ClusterObject"


def test_unbindable_pipeline_input_is_non_terminating() -> None:
    with pytest.raises(CmdletError) as caught:
        binder("Start-VM").bind([("Name", "x")], vm_input())
    assert caught.value.fully_qualified_error_id.startswith("InputObjectNotBound,")
    assert caught.value.terminating is False


def test_every_cmdlet_has_consistent_metadata() -> None:
    assert len(CMDLETS) == 20  # the 19 Hyper-V cmdlets and Get-CimInstance
    for info in CMDLETS.values():
        names = [p.name.casefold() for p in info.all_parameters()]
        assert len(names) == len(set(names)), info.name
        for param in info.parameters:
            assert set(param.mandatory_in) <= set(info.parameter_sets), (info.name, param.name)
            assert set(param.sets) <= set(info.parameter_sets), (info.name, param.name)
            assert set(param.positions) <= set(info.parameter_sets), (info.name, param.name)
