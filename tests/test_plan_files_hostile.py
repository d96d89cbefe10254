"""Malformed and hostile plan files end in our ValidationError (findings naming the place) or load.

Never a raw KeyError, TypeError, ValueError, RecursionError or a PyYAML/tomllib exception: a plan
file is input from people and from pull requests, and the command line turns ValidationError into
its "validation failed" exit code.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from plan_strategies import plans
from vmfailover.errors import ValidationError
from vmfailover.plan import FailoverPlan
from vmfailover.plan.build import plan_from_document, plan_to_document
from vmfailover.plan.convert import structure, unstructure
from vmfailover.plan.documents import PlanDocument
from vmfailover.plan.files import dumps, load
from vmfailover.plan.formats import FileFormat, write

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**400, 10**4200]),
    st.just(20_000).map(lambda bits: -(2**bits)),  # too long to print in decimal
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "latest", "15m", "-5m", "tcp_port", "1" * 200, "9" * 5000]),
    st.just(datetime(2024, 1, 1)),
    st.just(datetime(2024, 1, 1, tzinfo=UTC)),
    st.just(date(2024, 1, 1)),
    st.just(time(12, 0)),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def settles(action: Any) -> None:
    """``action()`` loads or raises ValidationError whose findings have places and messages."""
    try:
        action()
    except ValidationError as error:
        for finding in error.findings:
            assert finding.item and finding.message
            assert "cannot be read (" not in finding.message, finding


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid plan's plain data with one node replaced, a key added or a key removed."""
    data = unstructure(plan_to_document(draw(plans())))
    node: Any = data
    for _ in range(draw(st.integers(0, 6))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        containers = [(key, child) for key, child in children if isinstance(child, dict | list)]
        if not containers:
            break
        _, node = draw(st.sampled_from(containers))
    action = draw(st.sampled_from(["replace", "add", "remove"]))
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if action == "add" and isinstance(node, dict):
        node[draw(st.text(max_size=10))] = draw(values)
    elif action == "remove" and keys:
        del node[draw(st.sampled_from(keys))]
    elif keys:
        node[draw(st.sampled_from(keys))] = draw(values)
    return data


@given(mutated_documents())
def test_mutated_plain_data_settles(data: dict[str, Any]) -> None:
    settles(lambda: plan_from_document(structure(data, PlanDocument)))


@given(st.dictionaries(st.text(max_size=10), values, max_size=6))
def test_arbitrary_tables_settle(data: dict[str, Any]) -> None:
    settles(lambda: plan_from_document(structure(data, PlanDocument)))


@given(mutated_documents(), st.sampled_from(list(FileFormat)))
def test_mutated_files_settle(data: dict[str, Any], file_format: FileFormat) -> None:
    try:
        text = write(data, file_format)
    except Exception:
        assume(False)  # a value the writer cannot write (None in TOML, a 5000-digit number)
        raise
    settles(lambda: FailoverPlan.load(text, format=file_format))


@given(st.binary(max_size=200), st.sampled_from(list(FileFormat)))
def test_binary_junk_settles(junk: bytes, file_format: FileFormat) -> None:
    settles(lambda: FailoverPlan.load(junk, format=file_format))


@given(st.text(max_size=200), st.sampled_from([*FileFormat, None]))
def test_text_junk_settles(junk: str, file_format: FileFormat | None) -> None:
    settles(lambda: FailoverPlan.load(junk, format=file_format))


@given(plans(), st.sampled_from(list(FileFormat)), st.data())
def test_truncated_and_spliced_files_settle(
    plan: FailoverPlan, file_format: FileFormat, data: st.DataObject
) -> None:
    text = dumps(plan, file_format)
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=10))
    settles(lambda: FailoverPlan.load(text[:cut] + junk + text[cut:], format=file_format))


@pytest.mark.parametrize(
    ("text", "file_format"),
    [
        ("a = " + "[" * 50_000, FileFormat.TOML),
        ("a = " + "{b = " * 50_000, FileFormat.TOML),
        ("a: " + "[" * 50_000, FileFormat.YAML),
        ("a:\n" + "".join("  " * depth + "- \n" for depth in range(200)), FileFormat.YAML),
        ("name: p\nvms: " + "[" * 100 + "]" * 100, FileFormat.YAML),
    ],
)
def test_deep_nesting_is_refused(text: str, file_format: FileFormat) -> None:
    with pytest.raises(ValidationError):
        FailoverPlan.load(text, format=file_format)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
name: p
vms: *e
"""


def test_yaml_alias_expansion_is_refused_before_it_expands() -> None:
    with pytest.raises(ValidationError) as caught:
        FailoverPlan.load(BILLION_LAUGHS, format="yaml")
    assert str(caught.value).startswith("line 1, column 4: the anchor &a is not allowed")


@pytest.mark.parametrize(
    "text",
    [
        "name: p\nvms: [a]\n? [x]\n: y\n",
        "name: p\nvms: [a]\n1: y\n",
        "name: p\nvms: [a]\n<<: {rpo: 5}\n",
        "name: p\nvms: [a]\n---\nname: q\n",
        "name: !custom p\nvms: [a]\n",
        "name: p\nvms: !!set {a, b}\n",
        "name: p\nvms: [a]\nrpo: 0x" + "f" * 5000 + "\n",
    ],
)
def test_yaml_oddities_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        load(text, format="yaml")


@pytest.mark.parametrize("file_format", list(FileFormat))
def test_a_number_past_the_interpreters_digit_limit_is_refused_with_its_place(
    file_format: FileFormat,
) -> None:
    """tomllib raised a bare ValueError for an integer of more than 4,300 digits (found by the
    mutated-document property); both formats name the line and column instead."""
    text = {
        FileFormat.TOML: 'name = "p"\nvms = ["a"]\nrto = ' + "9" * 5000 + "\n",
        FileFormat.YAML: "name: p\nvms: [a]\nrto: " + "9" * 5000 + "\n",
    }[file_format]
    with pytest.raises(ValidationError, match="line 3, column"):
        FailoverPlan.load(text, format=file_format)
