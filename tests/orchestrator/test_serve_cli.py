"""``vmfailover serve`` refuses bad settings with our exit codes before it serves, bad stores
included (connection strings that are none, databases that do not answer, leases apart from a
PostgreSQL journal) without ever showing a password; and what it opens for each store."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from orchestrator.stores import database_uri
from test_postgres_journal import entry, summary
from vmfailover import PostgresJournal, PostgresLease, SQLiteJournal, SQLiteLease
from vmfailover.cli import EXIT_INVALID, EXIT_USAGE, main
from vmfailover.cli.journal import is_database, journal_spec
from vmfailover.cli.serve import open_lease, open_stores
from vmfailover.engine.lease import LeaseLostError
from vmfailover.errors import ValidationError


def serve(tmp_path: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(
        ["serve", "--journal", str(tmp_path / "j.db"), "--lease", str(tmp_path / "l.db"), *extra],
        out=out,
    )
    return code, out.getvalue()


def test_a_backend_that_cannot_be_loaded_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = serve(tmp_path, "--backend", "no_such_module_here:backend", "--name", "site-b")
    assert code == EXIT_USAGE
    assert "no_such_module_here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"), [("--poll", "nan"), ("--lease-seconds", "inf"), ("--name", "")]
)
def test_bad_settings_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    settings = {"--name": "site-b", option: value}
    flags = [part for pair in settings.items() for part in pair]
    code, _ = serve(tmp_path, "--backend", "vmfailover.testing:lab", *flags)
    assert code == EXIT_INVALID
    err = capsys.readouterr().err
    assert {"--poll": "poll", "--lease-seconds": "lease_seconds", "--name": "name"}[option] in err


def test_an_empty_lease_store_is_refused() -> None:
    with pytest.raises(ValidationError, match="--lease"):
        open_lease("")


# --- the stores: SQLite files or a PostgreSQL database --------------------------------------


SECRET = "s3cret-Passw0rd"


@pytest.mark.parametrize(
    ("journal", "lease", "says"),
    [
        # not a connection string: refused before anything is reached
        (f"postgresql://dr:{SECRET}@[::1/vmfailover", None, "--journal: is not a libpq"),
        (f"postgresql://dr:{SECRET}@db.example:port/vmfailover", None, "--journal: names a port"),
        # a database that does not answer (nothing listens on port 1): refused at start
        (f"postgresql://dr:{SECRET}@127.0.0.1:1/vmfailover", None, "127.0.0.1/vmfailover"),
        # a setting libpq refuses when it connects
        (f"postgresql://dr:{SECRET}@127.0.0.1/vmfailover?sslmode=bogus", None, "sslmode"),
        # the leases of a PostgreSQL journal are in its own database
        (f"postgresql://dr:{SECRET}@127.0.0.1:1/vmfailover", "leases.db", "--lease: with a"),
        (
            f"postgresql://dr:{SECRET}@127.0.0.1:1/vmfailover",
            f"postgresql://dr:{SECRET}@127.0.0.1:1/other",
            "--lease: with a PostgreSQL journal",
        ),
        # an SQLite journal shares no database to keep leases in
        ("journal.db", None, "--lease: is needed with an SQLite journal"),
        # an SQLite journal with a lease database that does not answer
        ("journal.db", f"postgres://dr:{SECRET}@127.0.0.1:1/vmfailover", "--lease: cannot reach"),
    ],
)
def test_stores_that_cannot_be_used_are_refused_naming_the_option_never_the_password(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    journal: str,
    lease: str | None,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    flags = ["--journal", journal, *(["--lease", lease] if lease is not None else [])]
    code = main(
        ["serve", *flags, "--backend", "vmfailover.testing:lab", "--name", "site-b"], out=out
    )
    err = capsys.readouterr().err
    assert code == EXIT_INVALID, err
    assert says in err, err
    assert SECRET not in err + out.getvalue()
    assert not (tmp_path / "journal.db").exists()  # refused before any store was made


def test_the_journal_may_come_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMFAILOVER_JOURNAL", f"postgresql://dr:{SECRET}@127.0.0.1:1/vmfailover")
    code = main(["serve", "--backend", "vmfailover.testing:lab", "--name", "site-b"])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert "--journal: cannot reach the database '127.0.0.1/vmfailover'" in err
    assert SECRET not in err


def test_a_postgresql_journal_gets_its_leases_and_fences_each_runs_writes_in_the_statement(
    postgres_dsn: str,
) -> None:
    """``--journal postgresql://...``: the leases in the same database, and each run's journal
    carries the run's token in every write (a write after a newer holder came changes nothing)."""
    uri = database_uri(postgres_dsn)
    assert journal_spec(uri) == uri and is_database(uri)
    stores = open_stores(uri, None)
    same = open_stores(uri, uri)  # the journal's own connection string is accepted as --lease
    try:
        assert isinstance(stores.journal, PostgresJournal) and stores.journal.token is None
        assert isinstance(stores.lease, PostgresLease) and stores.journal_for is not None
        first = stores.lease.acquire("crm", "site-a", ttl=0.5)
        assert first is not None
        run_journal = stores.journal_for(first.token)
        assert isinstance(run_journal, PostgresJournal) and run_journal.token == first.token
        run_journal.begin(summary("run-1"), "{}")
        time.sleep(0.6)  # the first holder was paused past its lease
        second = same.lease.acquire("crm", "site-b", ttl=30)
        assert second is not None and second.token.number == 2
        with pytest.raises(LeaseLostError, match="token 1"):
            run_journal.append([entry("run-1", 1)])
        assert stores.journal.load("run-1").entries == ()
        run_journal.close()
    finally:
        stores.close()
        same.close()


def test_an_sqlite_journal_keeps_unfenced_writes_to_the_orchestrator(tmp_path: Path) -> None:
    stores = open_stores(str(tmp_path / "journal.db"), str(tmp_path / "lease.db"))
    try:
        assert isinstance(stores.journal, SQLiteJournal)
        assert isinstance(stores.lease, SQLiteLease)
        assert stores.journal_for is None  # the orchestrator fences with a check before writing
    finally:
        stores.close()
