"""rpo_status: the RPO measured on the backend, one event per change, rendered as a table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vmfailover import (
    ReplicationJob,
    RetentionPolicy,
    RPOChanged,
    RPOState,
    ValidationError,
    rpo_status,
)
from vmfailover.testing import lab

START = datetime(2024, 6, 3, tzinfo=UTC)


def test_vms_against_targets_without_a_job() -> None:
    backend = lab(start=START)  # the newest points are 20 minutes old
    report = rpo_status(backend, {"db01": "30m", "web01": "15m", "app01": "4m", "nobody": "1h"})
    assert report.entry("db01").state is RPOState.COMPLIANT
    assert report.entry("web01").state is RPOState.EXCEEDED
    assert report.entry("app01").state is RPOState.CRITICAL
    assert report.entry("app01").age_seconds == 20 * 60
    ghost = report.entry("nobody")
    assert ghost.state is RPOState.UNPROTECTED
    assert "no VM with id or name 'nobody'" in (ghost.reason or "")
    assert report.events == ()
    assert not report.compliant
    assert report.count("critical") == 1
    text = str(report)
    assert "1 compliant, 1 exceeded, 1 critical, 1 unprotected" in text
    assert "20m00s" in text
    json.dumps(report.as_dict())


def test_compliance_over_the_window_comes_from_points_and_history() -> None:
    backend = lab(start=START)  # points at 00:00, 01:00, 02:00, 03:00; now 03:20
    report = rpo_status(backend, {"db01": "30m"}, window="2h")
    # Window 01:20-03:20: met 01:20-01:30, 02:00-02:30, 03:00-03:20: 60 of 120 minutes.
    assert report.entry("db01").compliance == pytest.approx(0.5)


def test_a_first_breach_is_reported_then_only_changes() -> None:
    backend = lab(start=START)
    job = ReplicationJob(
        "j",
        ["web01", "web02"],
        "esx-b1",
        "ds-b1",
        {"every": "1h"},
        RetentionPolicy(last=3),
        "15m",
        backend=backend,
    )
    first = rpo_status(backend, [job])
    assert [(event.vm, event.previous, event.current) for event in first.events] == [
        ("web01", None, RPOState.EXCEEDED),
        ("web02", None, RPOState.EXCEEDED),
    ]
    assert rpo_status(backend, [job]).events == ()
    job.run()
    healed = rpo_status(backend, job)
    assert [event.current for event in healed.events] == [RPOState.COMPLIANT] * 2
    assert isinstance(healed.events[0], RPOChanged)
    backend.clock.advance(31 * 60)
    assert [event.current for event in rpo_status(backend, job).events] == [RPOState.SEVERE] * 2


def test_unreadable_points_are_reported_without_an_event() -> None:
    backend = lab(start=START)
    job = ReplicationJob(
        "j",
        ["web01"],
        "esx-b1",
        "ds-b1",
        {"every": "1h"},
        RetentionPolicy(last=3),
        "1h",
        backend=backend,
    )
    job.run()
    backend.faults.fail("recovery_points", times=3)
    report = rpo_status(backend, job)
    assert "recovery points unreadable" in (report.entry("web01").reason or "")
    assert report.events == ()


def test_jobs_must_belong_to_the_backend() -> None:
    backend, other = lab(start=START), lab(start=START)
    job = ReplicationJob(
        "j",
        ["web01"],
        "esx-b1",
        "ds-b1",
        {"every": "1h"},
        RetentionPolicy(last=3),
        "1h",
        backend=other,
    )
    with pytest.raises(ValidationError, match="another backend"):
        rpo_status(backend, [job])
    with pytest.raises(ValidationError, match="expected replication jobs"):
        rpo_status(backend, "web01")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="rpo of VM 'web01'"):
        rpo_status(backend, {"web01": "0m"})


def test_the_html_table_escapes_names() -> None:
    backend = lab(start=START)
    html = rpo_status(backend, {"<b>web01</b>": "1h"}, now=START + timedelta(hours=4))._repr_html_()
    assert "&lt;b&gt;" in html
    assert "<b>web01" not in html
