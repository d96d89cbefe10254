"""What only the PostgreSQL journal does: a server that goes away, a password that stays hidden,
the missing extra, and fencing, where every write carries a holder's token and a newer holder
makes it change nothing (two holders on a real server).

The journal's own promises (history, versions, refusals, resume, crash at every point) are tested
on both stores in test_journal.py and test_resume_crash_points.py."""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Iterator

import pytest

from journal_support import scene, small_plan
from vmfailover import (
    JournalUnavailableError,
    LeaseLostError,
    MissingExtraError,
    PostgresJournal,
    PostgresLease,
    Runner,
)
from vmfailover.engine.journal import SCHEMA_VERSION, EntryKind, JournalEntry, RunSummary
from vmfailover.engine.results import RunResult
from vmfailover.errors import ConflictError, NotFoundError, TransientBackendError, ValidationError
from vmfailover.model import FailoverKind
from vmfailover.testing.postgres import PostgresServer, postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]

NOW = scene("test").clock.now()


def summary(run_id: str, plan: str = "crm") -> RunSummary:
    return RunSummary(run_id, FailoverKind.TEST, plan, NOW, "running")


def entry(run_id: str, seq: int) -> JournalEntry:
    return JournalEntry(run_id, seq, EntryKind.VM_STARTED, NOW, vm="dc01")


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[PostgresServer]:
    """A server of this module's own, over TCP with a password; its tests restart it."""
    with PostgresServer(tcp=True) as server:
        yield server


def test_a_new_schema_gets_the_tables_once_and_a_run_journals_there(postgres_dsn: str) -> None:
    with PostgresJournal(postgres_dsn, schema="journal_a") as journal:
        assert journal.schema_version == SCHEMA_VERSION
        report = Runner(scene("planned"), journal=journal, poll_interval=15).failover(
            small_plan(), kind="planned"
        )
    assert report.result is RunResult.SUCCEEDED
    with PostgresJournal(postgres_dsn, schema="journal_a") as again:  # opened again: unchanged
        assert again.schema_version == SCHEMA_VERSION
        assert [run.run_id for run in again.runs()] == [report.run_id]
        assert again.report(report.run_id).report == report
    with PostgresJournal(postgres_dsn, schema="journal_b") as other:  # another schema: empty
        assert other.runs() == ()


def test_bad_arguments_are_refused_by_name(postgres_dsn: str) -> None:
    with pytest.raises(ValidationError, match=r"schema.*plain identifier"):
        PostgresJournal(postgres_dsn, schema='x"; DROP TABLE y; --')
    with pytest.raises(ValidationError, match="dsn"):
        PostgresJournal("")
    with pytest.raises(ValidationError, match="timeout"):
        PostgresJournal(postgres_dsn, timeout=float("nan"))
    with pytest.raises(ValidationError, match="PostgresLease"):
        PostgresJournal(postgres_dsn, lease="lease")  # type: ignore[arg-type]
    lease = PostgresLease(postgres_dsn)
    try:
        with pytest.raises(ValidationError, match="FencingToken"):
            PostgresJournal(postgres_dsn, lease=lease)
    finally:
        lease.close()


def test_without_the_extra_the_error_names_it(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=re.escape("vmfailover[postgres]")):
        PostgresJournal(postgres_dsn)


def test_the_password_is_never_shown(tcp_server: PostgresServer) -> None:
    tcp_server.start()
    dsn = tcp_server.tcp_dsn
    password = re.search(r"password=(\S+)", dsn).group(1)  # type: ignore[union-attr]
    with PostgresJournal(dsn) as journal:
        assert password not in repr(journal)
        journal.begin(summary("run-1"), "{}")
        with pytest.raises(ConflictError) as twice:
            journal.begin(summary("run-1"), "{}")
        assert password not in str(twice.value)
    wrong = dsn.replace(password, "not-" + password)
    with pytest.raises(JournalUnavailableError) as refused:
        PostgresJournal(wrong, timeout=2)
    assert password not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_a_server_restart_between_calls_is_ridden_out(tcp_server: PostgresServer) -> None:
    tcp_server.start()
    with PostgresJournal(tcp_server.tcp_dsn, schema="restarted", timeout=3) as journal:
        journal.begin(summary("run-r"), "{}")
        journal.append([entry("run-r", 1)])
        tcp_server.restart()  # the journal's connection is now broken; it does not know yet
        journal.append([entry("run-r", 2)])  # failed before its commit: made again, once
        assert [e.seq for e in journal.load("run-r").entries] == [1, 2]


def test_a_server_that_is_gone_is_a_transient_error_within_the_timeout(
    tcp_server: PostgresServer,
) -> None:
    tcp_server.start()
    journal = PostgresJournal(tcp_server.tcp_dsn, schema="gone", timeout=2)
    try:
        journal.begin(summary("run-g"), "{}")
        tcp_server.stop()
        started = time.monotonic()
        with pytest.raises(JournalUnavailableError, match="cannot append to journal") as gone:
            journal.append([entry("run-g", 1)])
        assert isinstance(gone.value, TransientBackendError)
        assert time.monotonic() - started < 10
        with pytest.raises(JournalUnavailableError, match="cannot read journal"):
            journal.runs()
        tcp_server.start()
        journal.append([entry("run-g", 1)])  # back: the next call connects anew
        assert len(journal.load("run-g").entries) == 1
    finally:
        journal.close()
        tcp_server.start()


# --- fencing ------------------------------------------------------------------------------------


def test_a_stale_holder_cannot_write_once_a_newer_one_holds_the_plan(postgres_dsn: str) -> None:
    """Two orchestrators, one plan: the first holder's lease expires (it was paused), the second
    acquires it; every write of the first is then refused, in the write's own statement, while
    the second writes on."""
    first_lease, second_lease = PostgresLease(postgres_dsn), PostgresLease(postgres_dsn)
    try:
        first_grant = first_lease.acquire("crm", "site-a", ttl=0.5)
        assert first_grant is not None
        first = PostgresJournal(postgres_dsn, lease=first_lease, token=first_grant.token)
        assert first.token == first_grant.token and "token 1" in repr(first)
        first.begin(summary("run-1"), "{}")
        first.append([entry("run-1", 1)])
        assert second_lease.acquire("crm", "site-b", ttl=30) is None  # held: the first acts
        time.sleep(0.6)  # the first holder is paused past its lease
        second_grant = second_lease.acquire("crm", "site-b", ttl=30)
        assert second_grant is not None and second_grant.token.number == 2
        second = PostgresJournal(postgres_dsn, lease=second_lease, token=second_grant.token)
        with pytest.raises(LeaseLostError, match="token 1"):
            first.append([entry("run-1", 2)])  # the paused holder wakes up and tries to write
        with pytest.raises(LeaseLostError):
            first.begin(summary("run-1b"), "{}")
        state_change = JournalEntry(
            "run-1", 2, EntryKind.STATE, NOW, data='{"from": "running", "to": "failed"}'
        )
        with pytest.raises(LeaseLostError):
            first.append([state_change])
        second.append([entry("run-1", 2)])  # the new holder takes the run over
        stored = second.load("run-1")
        assert [e.seq for e in stored.entries] == [1, 2]
        assert stored.summary.state == "running"  # the stale state change changed nothing
        assert [run.run_id for run in second.runs()] == ["run-1"]
        second_lease.release(second_grant)
        with pytest.raises(LeaseLostError, match="released"):
            second.append([entry("run-1", 3)])
        first.close()
        second.close()
    finally:
        first_lease.close()
        second_lease.close()


def test_a_fenced_journal_runs_a_whole_failover(postgres_dsn: str) -> None:
    lease = PostgresLease(postgres_dsn)
    try:
        grant = lease.acquire("crm", "site-a", ttl=60)
        assert grant is not None
        with PostgresJournal(postgres_dsn, lease=lease, token=grant.token) as journal:
            report = Runner(scene("regular"), journal=journal, poll_interval=15).failover(
                small_plan(), kind="regular"
            )
            assert report.result is RunResult.SUCCEEDED
            assert journal.report(report.run_id).calls == 3 * 4  # revert, address, power on
    finally:
        lease.close()


def test_a_reader_opens_only_a_journal_that_exists(postgres_dsn: str) -> None:
    """``create=False`` (the command line's reading commands): a schema without the journal's
    tables, or one that does not exist, is NotFoundError, and nothing is made."""
    schema = f"reader_{secrets.token_hex(4)}"
    with pytest.raises(NotFoundError, match="no journal in"):
        PostgresJournal(postgres_dsn, create=False)
    with pytest.raises(NotFoundError, match="no journal in"):
        PostgresJournal(postgres_dsn, schema=schema, create=False)
    with PostgresJournal(postgres_dsn, schema=schema) as made:  # a writer makes it
        made.begin(summary("run-1"), "{}")
    with PostgresJournal(postgres_dsn, schema=schema, create=False) as read:
        assert [run.run_id for run in read.runs()] == ["run-1"]
