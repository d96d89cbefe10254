"""The shipped JSON Schema is the generated one, and every plan a file can hold validates."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given

from plan_strategies import plans, retention_policies
from vmfailover.plan import FailoverPlan
from vmfailover.plan.build import plan_to_document, retention_to_document
from vmfailover.plan.convert import unstructure
from vmfailover.plan.documents import PlanDocument, RetentionDocument
from vmfailover.plan.schema import SCHEMA_FILES, generate, render, schema
from vmfailover.policy.retention import RetentionPolicy

PLAN = jsonschema.Draft202012Validator(schema(PlanDocument))
RETENTION = jsonschema.Draft202012Validator(schema(RetentionDocument))


def as_json(data: dict[str, Any]) -> Any:
    """What JSON sees of a file's content: date-times are ISO 8601 text."""
    return json.loads(
        json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else v)
    )


@pytest.mark.parametrize("document", list(SCHEMA_FILES))
def test_the_shipped_schema_is_the_generated_one(document: type) -> None:
    jsonschema.Draft202012Validator.check_schema(generate(document))
    assert schema(document) == json.loads(render(document)), (
        "regenerate: python -c 'from vmfailover.plan import schema; ...' (see scripts/"
        "plan_files_reference.py --write)"
    )


@given(plans())
def test_every_plan_validates_against_the_schema(plan: FailoverPlan) -> None:
    data = {"format_version": 1, **unstructure(plan_to_document(plan))}
    PLAN.validate(as_json(data))


@given(retention_policies())
def test_every_retention_policy_validates(policy: RetentionPolicy) -> None:
    RETENTION.validate(as_json(unstructure(retention_to_document(policy))))


@pytest.mark.parametrize(
    "data",
    [
        {"vms": ["a"]},
        {"name": "p", "vms": ["a"], "nmae": "typo"},
        {"name": "p", "vms": ["a"], "rpo": "15 minutes"},
        {"name": "p", "vms": ["a"], "rpo": -5},
        {"name": "p", "vms": ["a"], "order": {"vms": [{"name": "a", "probe": {"port": 22}}]}},
        {"name": "p", "vms": ["a"], "steps": [{"type": "approval", "name": "x", "command": []}]},
    ],
)
def test_the_schema_refuses_what_load_refuses(data: dict[str, Any]) -> None:
    assert not PLAN.is_valid(data)
    with pytest.raises(Exception, match=r".") as caught:
        FailoverPlan.load(json.dumps(data), format="yaml")
    assert type(caught.value).__name__ == "ValidationError"
