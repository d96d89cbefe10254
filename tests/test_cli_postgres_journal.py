"""``--journal postgresql://...`` on every command that takes a journal, against a real PostgreSQL
server over TCP with a password: ``run``, ``report``, ``cleanup``, ``undo``, ``resume`` and the
environment variable work as with an SQLite file; the commands that read never make the
journal's tables; a database that does not answer (or refuses the password) is our error naming
the journal by host and database, exit 3; and the password appears in no output."""

from __future__ import annotations

import io
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import attrs
import pytest

from journal_support import scene, small_plan
from test_cli_new_user import _plan_from_docs
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli import main
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.runner import Runner
from vmfailover.testing import SimulatedCrash
from vmfailover.testing.postgres import PostgresServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """This module's server: over TCP with a password, so the connection strings hold one."""
    with PostgresServer(tcp=True) as started:
        yield started


@attrs.frozen
class Database:
    """A fresh, empty schema on the server, as a ``postgresql://`` journal with a password."""

    uri: str
    password: str
    schema: str
    server: PostgresServer

    def tables(self) -> set[str]:
        import psycopg

        with psycopg.connect(self.server.dsn, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
            return {row[0] for row in rows}


_schemas = iter(range(1, 1_000_000))


@pytest.fixture
def database(server: PostgresServer) -> Iterator[Database]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    schema = f"cli_{next(_schemas)}"
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    settings = {key: str(value) for key, value in conninfo_to_dict(server.tcp_dsn).items()}
    password = settings.pop("password")
    user, host, port, dbname = (settings[key] for key in ("user", "host", "port", "dbname"))
    query = urlencode({"options": f"-c search_path={schema}"}, quote_via=quote)
    uri = f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{dbname}?{query}"
    try:
        yield Database(uri, password, schema, server)
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VMFAILOVER_JOURNAL", "VMFAILOVER_LAB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    return tmp_path


class Said:
    """Every command's output and errors, to look for the password in all of them at the end."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.everything: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        stream = io.StringIO()
        code = main(list(argv), out=stream)
        captured = self.capsys.readouterr()
        self.everything += [stream.getvalue(), captured.out, captured.err]
        return code, stream.getvalue(), captured.err

    def shown(self) -> str:
        return "\n".join(self.everything)


@pytest.fixture
def vmfailover(capsys: pytest.CaptureFixture[str]) -> Said:
    return Said(capsys)


def run_id_of(out: str) -> str:
    found = re.search(r"^run id: (\S+)$", out, re.M)
    assert found, out
    return found.group(1)


def test_a_test_run_is_journaled_reported_and_cleaned_up(
    folder: Path, database: Database, vmfailover: Said
) -> None:
    lab = ["--lab", "lab.json"]
    code, out, err = vmfailover(
        "run", "lab-app.toml", "--kind", "test", *lab, "--journal", database.uri
    )
    assert code == 0, out + err
    run_id = run_id_of(out)
    assert "vmfailover_runs" in database.tables()
    assert not (folder / "vmfailover-journal.db").exists()  # no SQLite file on the side

    code, out, err = vmfailover("report", "--journal", database.uri)
    assert code == 0, err
    assert run_id in out and "1 runs in 127.0.0.1/postgres" in out

    code, out, err = vmfailover("cleanup", run_id, *lab, "--journal", database.uri)
    assert code == 0, out + err
    assert f"run {run_id}:" in out

    code, out, err = vmfailover("report", run_id, "--journal", database.uri, "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "cleaned_up"
    assert database.password not in vmfailover.shown()


def test_a_planned_run_is_undone_with_the_journal_named_by_the_environment(
    folder: Path, database: Database, vmfailover: Said, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMFAILOVER_JOURNAL", database.uri)
    code, out, err = vmfailover("run", "lab-app.toml", "--kind", "planned", "--lab", "lab.json")
    assert code == 0, out + err
    run_id = run_id_of(out)

    code, out, err = vmfailover("undo", run_id, "--lab", "lab.json")
    assert code == 0, out + err
    code, out, err = vmfailover("report", run_id, "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "undone"
    code, out, err = vmfailover("report")
    assert code == 0 and run_id in out and "undone" in out
    assert database.password not in vmfailover.shown()


def test_reading_commands_never_make_the_journal(
    folder: Path, database: Database, vmfailover: Said
) -> None:
    lab = ["--lab", "lab.json"]
    for argv in (
        ["report"],
        ["report", "run-1"],
        ["cleanup", "run-1", *lab],
        ["commit", "run-1", *lab],
        ["undo", "run-1", *lab],
        ["failback", "run-1", *lab],
        ["resume", "run-1", "--backend", "lab", *lab],
    ):
        code, out, err = vmfailover(*argv, "--journal", database.uri)
        assert code == 2, (argv, out, err)
        assert "no journal in '127.0.0.1/postgres'" in err, (argv, err)
    assert database.tables() == set()
    assert not (folder / "lab.json").exists()  # refused before the backend was opened
    assert database.password not in vmfailover.shown()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_database_that_does_not_answer_is_refused_naming_it_without_the_password(
    folder: Path, vmfailover: Said
) -> None:
    secret = "s3cret-" + os.urandom(6).hex()
    nowhere = f"postgresql://dr:{secret}@127.0.0.1:{_free_port()}/journal"
    for argv in (
        ["report"],
        ["run", "lab-app.toml", "--kind", "test", "--lab", "lab.json"],
        ["undo", "run-1", "--lab", "lab.json"],
    ):
        code, out, err = vmfailover(*argv, "--journal", nowhere)
        assert code == 3, (argv, out, err)
        assert err.startswith(
            "vmfailover: --journal: cannot reach the database '127.0.0.1/journal'"
        )
        assert "lab-app.toml" not in err  # the journal is refused, not the plan
    assert secret not in vmfailover.shown()


def test_a_wrong_password_is_refused_and_neither_password_is_shown(
    folder: Path, database: Database, vmfailover: Said
) -> None:
    wrong = database.uri.replace(quote(database.password, safe=""), "not-the-password")
    code, out, err = vmfailover("report", "--journal", wrong)
    assert code == 3, out + err
    assert "cannot reach the database '127.0.0.1/postgres'" in err
    assert "not-the-password" not in vmfailover.shown()
    assert database.password not in vmfailover.shown()


def test_a_connection_string_that_is_no_connection_string_is_refused(
    folder: Path, vmfailover: Said
) -> None:
    code, out, err = vmfailover("report", "--journal", "postgresql://dr:pw@127.0.0.1:99999/x")
    assert code == 3, out + err
    assert "--journal" in err and "port" in err and "pw" not in err.replace("postgresql", "")


#: The backend the crashed run ran on; ``--backend test_cli_postgres_journal:crashed_backend``
#: finds it, as a site's own factory would connect to its vCenter.
CRASHED: list[MemoryBackend] = []


def crashed_backend() -> MemoryBackend:
    return CRASHED[-1]


def test_an_interrupted_run_is_resumed_from_the_postgres_journal(
    folder: Path, database: Database, vmfailover: Said
) -> None:
    backend = scene("planned")
    backend.faults.crash_at(backend.faults.calls + 25)
    runner = Runner(backend, journal=PostgresJournal(database.uri), poll_interval=15)
    with pytest.raises(SimulatedCrash):
        runner.failover(small_plan(), kind="planned")
    runner.close()
    backend.faults.crash_at(None)
    CRASHED.append(backend)
    try:
        code, out, err = vmfailover("report", "--journal", database.uri)
        assert code == 0 and "running (interrupted)" in out, out + err
        run_id = re.findall(r"^(run-\S+)", out, re.M)[0]
        code, out, err = vmfailover(
            "resume",
            run_id,
            "--journal",
            database.uri,
            "--backend",
            "test_cli_postgres_journal:crashed_backend",
        )
        assert code == 0, out + err
        code, out, err = vmfailover("report", run_id, "--journal", database.uri, "--json")
        assert json.loads(out)["result"] == "succeeded", out + err
    finally:
        CRASHED.clear()
    assert database.password not in vmfailover.shown()


DYING: list[tuple[MemoryBackend, PostgresServer]] = []


def backend_whose_journal_dies() -> MemoryBackend:
    """The lab, whose first power-on stops the journal's database (immediately, as a crash)."""
    backend, dying = DYING[-1]
    power_on = backend.power_on

    def stop_the_journal_then_power_on(vm_id: str) -> None:
        dying.stop(mode="immediate")
        power_on(vm_id)

    backend.power_on = stop_the_journal_then_power_on  # type: ignore[method-assign]
    return backend


def test_a_journal_that_dies_mid_run_leaves_the_run_unfinished_not_a_traceback(
    folder: Path, vmfailover: Said
) -> None:
    """The database goes away after ``run`` reached it: exit 4 with what to do, no traceback;
    once it is back, the journal shows the run interrupted and ``resume`` finishes it."""
    from psycopg.conninfo import conninfo_to_dict

    from vmfailover.testing import lab

    with PostgresServer(tcp=True, durable=True) as own:  # its commits survive its crash
        settings = {key: str(value) for key, value in conninfo_to_dict(own.tcp_dsn).items()}
        password = settings["password"]
        uri = (
            f"postgresql://{settings['user']}:{quote(password, safe='')}@{settings['host']}:"
            f"{settings['port']}/{settings['dbname']}"
        )
        backend = lab()
        DYING.append((backend, own))
        try:
            code, out, err = vmfailover(
                "run",
                "lab-app.toml",
                "--kind",
                "planned",
                "--journal",
                uri,
                "--backend",
                "test_cli_postgres_journal:backend_whose_journal_dies",
            )
            # The VMs whose steps the journal could not record failed (none acted unrecorded)
            # and the report says how to finish: the run is partial (exit 4), not a traceback.
            assert code == 4, out + err
            assert "Traceback" not in err
            run_id = run_id_of(out)
            assert f"resume run {run_id} once the journal answers" in out, out + err
            own.start()
            del backend.power_on  # the lab's own power-on again
            code, out, err = vmfailover("report", "--journal", uri)
            assert code == 0 and "(interrupted)" in out, out + err
            assert run_id in out
            CRASHED.append(backend)
            code, out, err = vmfailover(
                "resume",
                run_id,
                "--journal",
                uri,
                "--backend",
                "test_cli_postgres_journal:crashed_backend",
            )
            assert code == 0, out + err
            code, out, err = vmfailover("report", run_id, "--journal", uri, "--json")
            assert json.loads(out)["result"] == "succeeded", out + err
        finally:
            DYING.clear()
            CRASHED.clear()
    assert password not in vmfailover.shown()


def test_a_journal_lost_while_a_command_reads_it_is_an_unfinished_command_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, vmfailover: Said
) -> None:
    """The command line's own seam: a JournalUnavailableError that reaches it (the database went
    away after the command had opened the journal) is said in one line with what to do, exit 4."""
    from vmfailover.engine.journal import JournalUnavailableError

    def lost(*args: object, **kwargs: object) -> int:
        raise JournalUnavailableError("127.0.0.1/db", "read", "connection refused")

    monkeypatch.setattr("vmfailover.cli.report_command", lost)
    code, _, err = vmfailover("report", "--journal", "postgresql://u:secret@127.0.0.1/db")
    assert code == 4
    assert "cannot read journal '127.0.0.1/db': connection refused" in err
    assert "vmfailover resume RUN" in err and "Traceback" not in err
    assert "secret" not in vmfailover.shown()
