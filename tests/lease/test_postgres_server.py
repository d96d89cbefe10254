"""The throwaway PostgreSQL server the lease tests run against: real, unprivileged, cleaned up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import pytest

from vmfailover.errors import ValidationError
from vmfailover.testing.postgres import PostgresServer, PostgresServerError


def test_session_server_answers_as_an_unprivileged_user(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.dsn) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()
    assert version is not None and int(version[0]) >= 120000
    owner = os.stat(postgres_server.folder / "data").st_uid
    assert owner != 0, "PostgreSQL must not run as root"
    assert postgres_server.start_seconds is not None and postgres_server.start_seconds > 0


def test_each_test_gets_a_fresh_empty_schema(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        schema = connection.execute("SELECT current_schema()").fetchone()
        assert schema is not None and schema[0].startswith("test_")
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", schema
        ).fetchone()
        assert tables == (0,)
        connection.execute("CREATE TABLE mine (n int)")  # lands in the test's own schema


def test_tcp_needs_the_generated_password_which_repr_does_not_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # a TMPDIR only root may enter
    with PostgresServer(tcp=True) as server:
        if os.geteuid() == 0:
            assert private not in server.folder.parents, "the server's user could not reach it"
        else:
            assert private in server.folder.parents
        with psycopg.connect(server.tcp_dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        without_password = server.tcp_dsn.rsplit(" password=", 1)[0]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(without_password, connect_timeout=5)
        password = server.tcp_dsn.rsplit("password=", 1)[1]
        assert password not in repr(server)


def test_restart_keeps_the_data_and_stop_removes_everything() -> None:
    with PostgresServer() as server:
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (n int)")
            connection.execute("INSERT INTO kept VALUES (7)")
        pid = server.pid
        server.restart()
        assert server.pid != pid
        with psycopg.connect(server.dsn) as connection:
            assert connection.execute("SELECT n FROM kept").fetchone() == (7,)
        folder = server.folder
    assert not folder.exists()
    assert not server.running


def test_a_server_is_stopped_when_the_test_using_it_fails() -> None:
    seen: list[int | None] = []

    def failing_test() -> None:
        with PostgresServer() as server:
            seen.append(server.pid)
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()
    running_pid = seen[0]
    assert running_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(running_pid, 0)


def test_dsn_without_a_server_is_a_clear_error() -> None:
    with pytest.raises(PostgresServerError, match="with block"):
        _ = PostgresServer().dsn


def test_bad_settings_are_refused_where_they_enter() -> None:
    with pytest.raises(ValidationError, match="start_timeout"):
        PostgresServer(start_timeout=float("nan"))
    with pytest.raises(ValidationError, match="no such user"):
        PostgresServer(run_as="no-such-user-here")
    with pytest.raises(ValidationError, match="root"):
        PostgresServer(run_as="root")
