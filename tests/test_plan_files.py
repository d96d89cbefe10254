"""Plans as TOML and YAML files: an exact round trip, and errors that name the place in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from plan_strategies import plans, retention_policies
from vmfailover import StartOrder
from vmfailover.errors import NotFoundError, ValidationError
from vmfailover.plan import Approval, FailoverPlan, Step
from vmfailover.plan.files import dumps, load, save
from vmfailover.policy.probes import CallableProbe
from vmfailover.policy.retention import RetentionPolicy


def same(first: FailoverPlan, second: FailoverPlan) -> None:
    assert first == second
    # Spelled out too: what equality may not look at must survive as well.
    assert [getattr(s, "command", None) for s in first.steps] == [
        getattr(s, "command", None) for s in second.steps
    ]
    assert first.to_toml() == second.to_toml()


@given(plans())
def test_every_plan_survives_toml_exactly(plan: FailoverPlan) -> None:
    same(FailoverPlan.load(plan.to_toml()), plan)


@given(plans())
def test_every_plan_survives_yaml_exactly(plan: FailoverPlan) -> None:
    same(FailoverPlan.load(plan.to_yaml()), plan)


@given(retention_policies())
def test_every_retention_policy_survives_both_formats(policy: RetentionPolicy) -> None:
    for file_format in ("toml", "yaml"):
        assert load(dumps(policy, file_format), RetentionPolicy) == policy


def test_save_and_load_by_suffix(tmp_path: Path) -> None:
    plan = FailoverPlan(name="p", vms=["a", "b"], rpo="15m", rto=3600)
    for suffix in (".toml", ".yaml", ".yml"):
        path = plan.save(tmp_path / f"plan{suffix}")
        assert FailoverPlan.load(path) == plan
        assert FailoverPlan.load(str(path)) == plan
    text = (tmp_path / "plan.toml").read_text()
    assert 'rpo = "15m"' in text and 'rto = "1h"' in text
    assert not list(tmp_path.glob(".*partial"))


def test_a_missing_file_and_a_wrong_suffix() -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        FailoverPlan.load(Path("/nonexistent/plan.toml"))
    with pytest.raises(ValidationError, match=r"suffix '\.json'"):
        save(FailoverPlan(name="p", vms=["a"]), "/tmp/plan.json")


def test_callables_cannot_be_saved_and_the_error_names_them() -> None:
    def notify(context: object) -> None:
        return None

    order = StartOrder()
    order.add("a", probe=CallableProbe(lambda vm: True))
    plan = FailoverPlan(
        name="p",
        vms=["a"],
        order=order,
        steps=[
            Step("notify", notify),
            Approval("gate", approver=lambda request: True),
        ],
    )
    with pytest.raises(ValidationError) as caught:
        plan.to_toml()
    found = {f.item: f.message for f in caught.value.findings}
    assert "callable" in found["order.vms[0].probe"]
    assert "notify" in found["steps[0].command"]
    assert "approver" in found["steps[1].approver"]


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        FailoverPlan.load(text, **kwargs)  # type: ignore[arg-type]
    return [str(finding) for finding in caught.value.findings]


TOML_WITH_PROBLEMS = """\
name = "three-tier"
vms = ["dc01", "db01", "app01", "web01"]
rpo = "15 minutes"

[order]
max_parallel = 0

[[order.vms]]
name = "db01"
after = ["dc01"]

[[order.vms]]
name = "app01"
after = ["db02"]
timout = 300

[[order.vms]]
name = "web01"
timeout = -5
probe = { type = "tcp_port", port = 70000 }
"""


def test_content_errors_name_the_path_and_all_come_at_once() -> None:
    found = problems(TOML_WITH_PROBLEMS)
    assert any(f.startswith("rpo: ") and "not a duration" in f for f in found), found
    assert any(f.startswith("order.max_parallel: must be a whole number >= 1") for f in found)
    assert "order.vms[1].timout: is not a known key (did you mean 'timeout'?)" in found
    assert any(
        f.startswith("order.vms[2].timeout: must be a finite number of seconds > 0") for f in found
    )
    assert any(f.startswith("order.vms[2].probe.port: must be a TCP port") for f in found)


def test_references_name_the_path() -> None:
    text = """\
name = "p"
vms = ["dc01", "db01"]
recovery_point = { db03 = "latest" }

[[order.vms]]
name = "db01"
after = ["dc01", "db02"]

[[steps]]
name = "dns"
command = ["/bin/true"]
vm = "web01"
"""
    found = problems(text)
    assert found[0].startswith('order.vms[0].after[1]: unknown VM "db02"')
    assert any(f.startswith('steps[0].vm: unknown VM "web01"') for f in found)
    assert any(f.startswith("recovery_point.db03: names VM") for f in found)


def test_yaml_content_errors_carry_line_and_column() -> None:
    text = """\
name: p
vms: [a, b]
order:
  vms:
    - name: a
      timeout: -1
"""
    assert problems(text) == [
        "order.vms[0].timeout (line 6, column 7): must be a finite number of seconds > 0, got -1"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "p"\nvms = ["a",,]\n', "line 2, column 12: is not valid TOML"),
        ("name: p\nvms: [a\n", "line 3, column 1: is not valid YAML"),
        ("name: &n p\nvms: [*n]\n", "line 1, column 7: the anchor &n is not allowed"),
        (
            "name: !!python/object:os.system p\nvms: [a]\n",
            "line 1, column 7: the tag tag:yaml.org,2002:python/object:os.system is not allowed",
        ),
        ("name: p\nname: q\nvms: [a]\n", "line 2, column 1: the key 'name' appears twice"),
        ("", "name: is required"),
        ("---\n", "plan file: is empty"),
        ("- a\n- b\n", "plan file: must be a table of keys"),
    ],
)
def test_syntax_errors_name_line_and_column(text: str, expected: str) -> None:
    found = problems(text)
    assert any(f.startswith(expected) for f in found), found


def test_a_file_that_ends_too_early() -> None:
    found = problems('name = "p"\nvms = [\n', format="toml")
    assert len(found) == 1 and "is not valid TOML" in found[0]


def test_yaml_11_words_are_text() -> None:
    plan = FailoverPlan.load("name: no\nvms: [on, off, yes]\nshutdown_timeout: 012\n")
    assert plan.name == "no"
    assert plan.vms == ("on", "off", "yes")
    assert plan.shutdown_timeout == 12.0  # YAML 1.2: decimal, not octal


def test_a_format_version_from_the_future_is_refused() -> None:
    found = problems('format_version = 2\nname = "p"\nvms = ["a"]\n')
    assert found[0].startswith("format_version: this vmfailover reads format 1")


ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_page_and_schemas_are_current() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plan_files_reference.py"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_lab_example_plan_loads_and_passes_the_preflight_on_the_lab() -> None:
    from vmfailover.testing import LAB_DEPENDENCIES, lab

    plan = FailoverPlan.load(ROOT / "examples" / "lab-plan.toml")
    assert set(plan.vms) == set(LAB_DEPENDENCIES)
    for entry in plan.start_order():
        assert set(entry.after) == set(LAB_DEPENDENCIES[entry.name])
    backend = lab()
    for kind in ("test", "planned"):
        assert [str(f) for f in plan.validate(backend, kind)] == [], kind
    backend.fail_site("site-a")
    assert [str(f) for f in plan.validate(backend, "regular")] == []
    # What it saves reads back the same, in both formats.
    assert FailoverPlan.load(plan.to_yaml()) == plan
    assert FailoverPlan.load(plan.to_toml()) == plan


def test_without_the_files_extra_the_error_names_it() -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['cattrs'] = None\n"
        "from vmfailover import MissingExtraError\n"
        "from vmfailover.plan import FailoverPlan\n"
        "plan = FailoverPlan(name='p', vms=['a'])\n"
        "try:\n"
        "    plan.to_toml()\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == (
        "plan files needs the 'cattrs' package: pip install 'vmfailover[files]'"
    ), done.stderr
