"""Generate the plan-file reference (docs/plan-files.md) and the shipped JSON Schemas.

The schemas come from the document classes (vmfailover.plan.schema), the reference page from the
schemas, the worked example from examples/lab-plan.toml, and every error message on the page from
actually loading the broken snippet, so none of it can drift from what the code does.

    python scripts/plan_files_reference.py --write   # regenerate
    python scripts/plan_files_reference.py --check   # exit 1 if anything committed is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from vmfailover.errors import ValidationError
from vmfailover.plan import FailoverPlan, Step
from vmfailover.plan.documents import PlanDocument, RetentionDocument
from vmfailover.plan.schema import SCHEMA_FILES, render

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "plan-files.md"
SCHEMAS = ROOT / "src" / "vmfailover" / "plan" / "schemas"
EXAMPLE = ROOT / "examples" / "lab-plan.toml"

#: Each table of the format: its heading, what introduces it in a file, in page order.
SECTIONS: list[tuple[str, str, str]] = [
    ("PlanDocument", "The plan (top level)", "the file itself"),
    ("OrderDocument", "order", "`[order]`"),
    ("OrderVMDocument", "order.vms", "`[[order.vms]]`, one per VM"),
    ("PoweredOnProbe", "probe: powered_on", '`probe = { type = "powered_on" }`'),
    ("ToolsHeartbeatProbe", "probe: tools_heartbeat", '`probe = { type = "tools_heartbeat" }`'),
    ("IPAssignedProbe", "probe: ip_assigned", '`probe = { type = "ip_assigned" }`'),
    ("TCPPortProbe", "probe: tcp_port", '`probe = { type = "tcp_port", port = 5432 }`'),
    ("HTTPStatusProbe", "probe: http_status", '`probe = { type = "http_status", url = "..." }`'),
    ("NetworkDocument", "network", "`[network]`, `[network.production]`, `[network.test]`"),
    ("RuleDocument", "reip and test_reip", "`[[reip]]` or `[[test_reip]]`, one per rule"),
    ("OverrideDocument", "reip_overrides", "`[[reip_overrides]]`, one per NIC"),
    ("IPConfigDocument", "reip_overrides.ip_configs", "`ip_configs = [{ address = ... }]`"),
    ("StepDocument", "steps: type = step", "`[[steps]]` (the default type)"),
    ("ApprovalDocument", "steps: type = approval", '`[[steps]]` with `type = "approval"`'),
]

#: Broken snippets whose real error messages the page shows: (what, format, text).
ERRORS: list[tuple[str, str, str]] = [
    ("A TOML syntax error: line and column", "toml", 'name = "p"\nvms = ["a",, "b"]\n'),
    ("A YAML syntax error", "yaml", "name: p\nvms: [a, b\n"),
    ("A required key is missing", "toml", 'vms = ["a"]\n'),
    ("A typo in a key", "toml", 'name = "p"\nvms = ["a"]\nrecovery_piont = "latest"\n'),
    ("A wrong type", "toml", 'name = "p"\nvms = "a"\n'),
    ("A duration that is not one", "toml", 'name = "p"\nvms = ["a"]\nrpo = "15 minutes"\n'),
    (
        "A value out of range",
        "toml",
        'name = "p"\nvms = ["a"]\n\n[[order.vms]]\nname = "a"\ntimeout = -5\n'
        'probe = { type = "tcp_port", port = 70000 }\n',
    ),
    (
        "An unknown probe type",
        "toml",
        'name = "p"\nvms = ["a"]\n\n[[order.vms]]\nname = "a"\nprobe = { type = "ping" }\n',
    ),
    (
        "A dependency on a VM the plan does not have",
        "toml",
        'name = "p"\nvms = ["dc01", "db01"]\n\n[[order.vms]]\nname = "db01"\n'
        'after = ["dc01", "db02"]\n',
    ),
    ("A VM listed twice", "toml", 'name = "p"\nvms = ["a", "b", "a"]\n'),
    (
        "A dependency cycle",
        "toml",
        'name = "p"\nvms = ["a", "b"]\n\n[[order.vms]]\nname = "a"\nafter = ["b"]\n\n'
        '[[order.vms]]\nname = "b"\nafter = ["a"]\n',
    ),
    (
        "A resource without a capacity",
        "toml",
        'name = "p"\nvms = ["a"]\n\n[[order.vms]]\nname = "a"\nresources = ["ds-b1"]\n',
    ),
    (
        "A step for a VM the plan does not have",
        "toml",
        'name = "p"\nvms = ["a"]\n\n[[steps]]\nname = "dns"\ncommand = ["/bin/update-dns"]\n'
        'vm = "b"\n',
    ),
    (
        "A re-IP rule that cannot work",
        "toml",
        'name = "p"\nvms = ["a"]\n\n[[reip]]\nsource = "192.168.1.*"\ntarget = "10.0.*.1"\n',
    ),
    (
        "Content errors in YAML name the line too",
        "yaml",
        "name: p\nvms: [a]\norder:\n  vms:\n    - name: a\n      timout: 5m\n",
    ),
    ("YAML anchors and aliases", "yaml", "name: &n p\nvms: [*n]\n"),
    ("YAML tags", "yaml", "name: !!python/object/apply:os.system [ls]\nvms: [a]\n"),
    ("A key given twice in YAML", "yaml", "name: p\nvms: [a]\nname: q\n"),
    ("A format from a newer vmfailover", "toml", 'format_version = 2\nname = "p"\nvms = ["a"]\n'),
]


def _type(entry: dict[str, Any]) -> str:
    if "$ref" in entry:
        name = entry["$ref"].rsplit("/", 1)[1]
        for definition, heading, _ in SECTIONS:
            if definition == name:
                return f"table ([{heading}](#{_slug(heading)}))"
        return {"text": "text", "duration": "duration", "date-time": "date-time"}.get(
            name, name.replace("-", " ")
        )
    if "const" in entry:
        return f'`"{entry["const"]}"`'
    if "enum" in entry:
        return "one of " + ", ".join(f"`{value}`" for value in entry["enum"])
    if "oneOf" in entry:
        return "a probe table (see below)" if "Probe" in str(entry) else "a step or approval"
    if "anyOf" in entry:
        return "`latest`, `latest-application-consistent`, a date-time, or a table of VM -> one"
    kind = entry.get("type")
    if kind == "array":
        item = _type(entry["items"])
        return f"list of {item}"
    if kind == "object":
        return f"table of {_type(entry['propertyNames'])} -> {_type(entry['additionalProperties'])}"
    if kind == "integer":
        low, high = entry.get("minimum"), entry.get("maximum")
        if low is not None and high is not None:
            return f"integer {low}-{high}"
        if low is not None:
            return f"integer >= {low}"
        return "integer"
    return {"string": "text (may be empty)", "boolean": "true or false"}.get(str(kind), str(kind))


def _default(entry: dict[str, Any]) -> str:
    if "default" not in entry:
        return "**required**"
    value = entry["default"]
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, float) and value.is_integer():
        from vmfailover.plan.convert import format_seconds

        return f'`"{format_seconds(value)}"`'
    if value in ([], {}):
        return f"`{value}`"
    return f"`{value}`"


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _table(definition: dict[str, Any]) -> list[str]:
    lines = ["| key | type | default | what |", "| --- | --- | --- | --- |"]
    for key, entry in definition["properties"].items():
        description = entry.get("description", "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type(entry)} | {_default(entry)} | {description} |")
    return lines


def _error_section() -> list[str]:
    lines = []
    for title, file_format, text in ERRORS:
        try:
            FailoverPlan.load(text, format=file_format)
        except ValidationError as error:
            message = str(error)
        else:  # pragma: no cover - a snippet that loads is a bug in this list
            raise SystemExit(f"the error example {title!r} loads without error")
        lines += [
            f"**{title}**",
            "",
            f"```{file_format}",
            text.rstrip("\n"),
            "```",
            "",
            "```text",
            message,
            "```",
            "",
        ]
    try:
        FailoverPlan(name="p", vms=["a"], steps=[Step("notify", print)]).to_toml()
    except ValidationError as error:
        lines += [
            "**Saving what a file cannot hold** (a step that is a Python callable):",
            "",
            "```text",
            str(error),
            "```",
            "",
        ]
    return lines


INTRO = """\
# Plan files

<!-- Generated by scripts/plan_files_reference.py from the JSON Schema, the example plan and the
real error messages. Do not edit: run `python scripts/plan_files_reference.py --write`. -->

A failover plan is plain data, so it can live in a file that a team reviews in a pull request.
vmfailover reads and writes plans as **TOML** or **YAML** with the same keys; what it writes, it
reads back to an equal plan (property-tested), and every problem in a file is reported at once,
each named by its place.

```python
from vmfailover.plan import FailoverPlan

plan = FailoverPlan.load("plan.toml")          # or .yaml / .yml, or the text itself
findings = plan.validate(backend, "test")      # the pre-flight against an inventory
plan.save("plan.yaml")                         # or plan.to_toml(), plan.to_yaml()
print(plan.diff(FailoverPlan.load("plan-v2.toml")))   # what a change does, in words
```

Plan files need the `files` extra: `pip install 'vmfailover[files]'` (cattrs, tomli-w and
PyYAML). Retention policies use the same reader:
`vmfailover.plan.files.load("policy.toml", RetentionPolicy)` and `dumps(policy)`.

The format is described by a JSON Schema (draft 2020-12) that ships with the package as
`vmfailover/plan/schemas/plan.schema.json` (and `retention-policy.schema.json`);
`vmfailover.plan.schema.schema()` returns it. Editors with a TOML or YAML language server can use
it for completion and checks. The schema sees a file as JSON does: a TOML date-time is ISO 8601
text there.

## Reviewing a change

`plan.diff(other)` (also `vmfailover.plan.diff(a, b)`) says what a change does, in words, for the
pull request: VMs added or removed, dependencies, groups, probes, timeouts, limits, network
mappings, re-IP rules and overrides, the recovery point choice, power-off, RPO and RTO, steps.
It compares the plans as data, so reordering a file reports nothing.
`examples/validate_plan_file.py`
prints one:

```text
plan 'three-tier': 4 changes
  objectives: RTO changed from 15m00s to 20m00s
  order: VM 'web01' dependencies changed from app01, app02 to app01, app02, mon01
  order: VM 'web02' dependencies changed from app01, app02 to app01, app02, mon01
  order: VM 'web03' dependencies changed from app03 to app03, mon01
```

In Jupyter a plan shows a summary, its start-order graph (inline SVG, columns by dependency depth,
colours by priority group) and a VM table; the diff and the pre-flight's findings
(`plan.validate(backend, kind)`) show as tables. No JavaScript is needed.

## What a file may not hold

- **Unknown keys** are errors, so a typo (`timout`) cannot pass silently; the message suggests the
  key you probably meant.
- **Python callables** (a step or probe that is a function, an approval's approver): saving such a
  plan is refused, naming the step. Give them in code after loading. A file never names code to
  import, so loading a plan file can never run code.
- In YAML: **anchors and aliases** (the "billion laughs" expansion), **tags** (`!!python/...`),
  **keys given twice** (YAML parsers usually keep the last silently), keys that are not text, and
  nesting deeper than 64 levels. YAML files are read by the YAML 1.2 core schema: `no`, `on` and
  `yes` are text, not booleans, and `012` is twelve.
- Files larger than 16 MiB.

## Value types

- **text**: a non-empty string.
- **duration**: seconds as a number (`90`, `0.5`), or text with the units `s`, `m` (minutes),
  `h`, `d` and `w`: `"90s"`, `"15m"`, `"1h30m"`. At most a century. Saved as text when the
  seconds are whole.
- **date-time**: a TOML date-time with a time zone (`2024-05-01T12:00:00Z`), or the same as ISO
  8601 text (YAML). A date-time without a time zone is refused: its instant is unknown.
- **calendar span** (retention): years, months, days and hours, such as `"7d"` or `"1y6m"`.
"""


def page() -> str:
    plan_schema = _load_schema(PlanDocument)
    definitions = plan_schema["$defs"]
    definitions["PlanDocument"] = plan_schema
    lines = [INTRO, "## A worked example: the lab", ""]
    lines += [
        "The lab of `vmfailover.testing.lab()` as a plan (`examples/lab-plan.toml`, loaded and",
        "validated against the lab by the test suite and by `examples/validate_plan_file.py`):",
        "",
        "```toml",
        EXAMPLE.read_text(encoding="utf-8").rstrip("\n"),
        "```",
        "",
        "The same plan as `plan.to_yaml()` writes it begins:",
        "",
        "```yaml",
        "\n".join(FailoverPlan.load(EXAMPLE).to_yaml().splitlines()[:24]),
        "...",
        "```",
        "",
        "## Reference",
        "",
    ]
    for name, heading, introduced in SECTIONS:
        definition = definitions[name]
        lines += [
            f"### {heading}",
            "",
            f"{definition['description']} Written as {introduced}.",
            "",
            *_table(definition),
            "",
        ]
    retention = _load_schema(RetentionDocument)
    lines += [
        "### Retention policy files",
        "",
        f"{retention['description']} A file of its own (or, as replication jobs land, a table",
        "of a job); see [Retention](retention.md) for the rules.",
        "",
        *_table(retention),
        "",
        "## Error messages",
        "",
        "Each example below is loaded when this page is generated; the message shown is the one",
        "vmfailover gives. A `ValidationError` lists every problem found, each with its place:",
        "`line L, column C` where the parser knows it, the path in the file otherwise",
        "(`order.vms[2].timeout`), and for YAML content both.",
        "",
        *_error_section(),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _load_schema(document: type) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(render(document))
    return loaded


def outputs() -> dict[Path, str]:
    files = {SCHEMAS / name: render(document) for document, name in SCHEMA_FILES.items()}
    files[PAGE] = page()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the files")
    mode.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    arguments = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if arguments.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            stale.append(str(path.relative_to(ROOT)))
    if stale:
        print(
            "stale (run python scripts/plan_files_reference.py --write): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
