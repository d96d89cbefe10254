"""``PostgresServer``: a throwaway PostgreSQL server in a temporary folder, for tests and benches.

Built on the distribution's own binaries (Debian's ``postgresql`` package puts them under
``/usr/lib/postgresql/<version>/bin``): ``initdb`` makes a cluster in a fresh temporary folder and
``postgres`` serves it on a Unix socket in that folder (and, when asked, on a free 127.0.0.1 port
with a generated password). PostgreSQL refuses to run as root, so under root (as CI runs) both
run as an unprivileged user, ``nobody`` unless told otherwise, who is given the folder.

The server is a child of this process: :meth:`PostgresServer.stop` ends it with a fast shutdown
and removes the folder, and on Linux the kernel ends it too should this process die first
(``PR_SET_PDEATHSIG``), so a killed test run leaves no server behind. Unless ``durable`` is set,
the server neither flushes nor waits for its disk (``fsync=off``): a test server needs no crash
safety, and it starts and writes faster without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from vmfailover.errors import ValidationError, VMFailoverError

__all__ = ["PostgresServer", "PostgresServerError", "find_postgres_binaries"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_SUPERUSER = "postgres"
_DATABASE = "postgres"


class PostgresServerError(VMFailoverError):
    """The throwaway server could not be found, made, started or stopped."""


def find_postgres_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: ``$VMFAILOVER_PG_BIN``, else the newest
    ``/usr/lib/postgresql/*/bin``, else wherever ``initdb`` is on ``PATH``."""
    override = os.environ.get("VMFAILOVER_PG_BIN")
    if override:
        folder = Path(override)
        if not (folder / "initdb").is_file():
            raise PostgresServerError(f"VMFAILOVER_PG_BIN={override!r} holds no initdb")
        return folder
    candidates = [Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates = [path for path in candidates if (path / "initdb").is_file()]
    if candidates:
        return max(candidates, key=lambda path: _version_key(path.parent.name))
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresServerError(
        "no PostgreSQL server binaries (initdb, postgres) found: install Debian's 'postgresql' "
        "package (apt-get install postgresql) or set VMFAILOVER_PG_BIN to their folder"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _others_can_reach(folder: Path) -> bool:
    """Whether a user who is neither owner nor in the group may enter ``folder`` and its parents."""
    try:
        resolved = folder.resolve(strict=True)
    except OSError:
        return False
    return all(os.stat(part).st_mode & 0o001 for part in (resolved, *resolved.parents))


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to end the child when this process dies, or None."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    pr_set_pdeathsig = 1
    quit_signal = int(signal.SIGQUIT)  # the postmaster's immediate shutdown

    def arm() -> None:
        prctl(pr_set_pdeathsig, quit_signal, 0, 0, 0)

    return arm


class PostgresServer:
    """One throwaway PostgreSQL cluster and its server process.

    ``with PostgresServer() as server:`` starts it; :attr:`dsn` is a libpq connection string for
    its superuser over the Unix socket (trust authentication: the socket's folder is private to
    the server's user), :attr:`tcp_dsn` one over 127.0.0.1 with a generated password when
    ``tcp=True``. :meth:`restart`, :meth:`stop` and :meth:`start` are there for tests of what a
    client does while its database goes away. :attr:`start_seconds` says how long the first start
    took (``initdb`` included).
    """

    def __init__(
        self,
        *,
        tcp: bool = False,
        durable: bool = False,
        run_as: str | None = None,
        settings: Sequence[tuple[str, str]] = (),
        start_timeout: float = _START_TIMEOUT,
    ) -> None:
        if not (0 < start_timeout <= 3600):
            raise ValidationError.of(
                "PostgresServer start_timeout", f"must be in (0, 3600] s, got {start_timeout!r}"
            )
        self._tcp = tcp
        self._durable = durable
        self._settings = tuple(settings)
        self._start_timeout = start_timeout
        self._user = self._unprivileged_user(run_as)
        self._bin: Path | None = None
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port = _free_port() if tcp else 5432
        self._password = secrets.token_urlsafe(24) if tcp else ""
        self.start_seconds: float | None = None

    # --- where it is -------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The temporary folder: ``data/`` (the cluster), the socket, ``server.log``."""
        if self._folder is None:
            raise PostgresServerError("the server has not been set up: use it in a with block")
        return self._folder

    @property
    def socket_dir(self) -> Path:
        return self.folder

    @property
    def port(self) -> int:
        """The TCP port with ``tcp=True``; otherwise the number in the socket's name."""
        return self._port

    @property
    def dsn(self) -> str:
        """Connection string for the superuser over the Unix socket (no password needed)."""
        return self.dsn_for(_DATABASE)

    def dsn_for(self, database: str) -> str:
        """Connection string for the superuser to ``database`` over the Unix socket."""
        if not database.isidentifier():
            raise ValidationError.of("database name", f"{database!r} is not a plain identifier")
        return f"host={self.socket_dir} port={self._port} user={_SUPERUSER} dbname={database}"

    @property
    def tcp_dsn(self) -> str:
        """Connection string over 127.0.0.1 with the generated password (``tcp=True`` only).

        It holds a secret: hand it to a client, do not log it.
        """
        if not self._tcp:
            raise PostgresServerError("the server listens on its Unix socket only (tcp=False)")
        return (
            f"host=127.0.0.1 port={self._port} user={_SUPERUSER} dbname={_DATABASE} "
            f"password={self._password}"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self._folder if self._folder is not None else "not set up"
        return f"PostgresServer({state}, {where}, tcp={self._tcp})"

    # --- life ----------------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        began = time.monotonic()
        try:
            self._make_cluster()
            self.start()
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server on the existing cluster and wait until it accepts connections."""
        if self.running:
            return
        binaries = self._binaries()
        options = [
            "-D",
            str(self.folder / "data"),
            "-k",
            str(self.socket_dir),
            "-p",
            str(self._port),
            "-c",
            f"listen_addresses={'127.0.0.1' if self._tcp else ''}",
        ]
        for name, value in self._server_settings():
            options += ["-c", f"{name}={value}"]
        user, group, extra_groups = self._identity()
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            self._process = subprocess.Popen(
                [str(binaries / "postgres"), *options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=self._environment(),
                preexec_fn=_parent_death_signal(),  # only a prctl call
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        finally:
            log.close()
        self._wait_ready()

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (disconnect clients, checkpoint) or ``immediate`` (no
        checkpoint; recovery at the next start, as after a crash)."""
        signals = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT, "smart": signal.SIGTERM}
        if mode not in signals:
            raise ValidationError.of("stop mode", f"must be one of {sorted(signals)}, got {mode!r}")
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signals[mode])
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT)
        self._process = None

    def restart(self, *, mode: str = "fast") -> None:
        """Stop and start again on the same cluster, socket and port (as ``pg_ctl restart``)."""
        self.stop(mode=mode)
        self.start()

    def close(self) -> None:
        """Stop the server (whatever state it is in) and remove its folder."""
        try:
            self.stop(mode="immediate")
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    # --- internals -----------------------------------------------------------------------------

    def _binaries(self) -> Path:
        if self._bin is None:
            self._bin = find_postgres_binaries()
        return self._bin

    @staticmethod
    def _unprivileged_user(run_as: str | None) -> pwd.struct_passwd | None:
        name = run_as or os.environ.get("VMFAILOVER_PG_USER")
        if name is None and os.geteuid() != 0:
            return None  # already unprivileged: run as ourselves
        name = name or "nobody"
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            raise ValidationError.of(
                "PostgresServer run_as", f"no such user {name!r}", "name an existing system user"
            ) from None
        if user.pw_uid == 0:
            raise ValidationError.of(
                "PostgresServer run_as", f"user {name!r} is root; PostgreSQL refuses to run as root"
            )
        if os.geteuid() != 0 and user.pw_uid != os.geteuid():
            raise ValidationError.of(
                "PostgresServer run_as",
                f"only root can run the server as another user ({name!r})",
            )
        return user

    def _identity(self) -> tuple[int | None, int | None, list[int] | None]:
        """``user``, ``group`` and ``extra_groups`` for a child that runs as our user."""
        if self._user is None or self._user.pw_uid == os.geteuid():
            return None, None, None
        return self._user.pw_uid, self._user.pw_gid, []

    def _environment(self) -> dict[str, str]:
        home = str(self.folder)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C"}

    def _server_settings(self) -> list[tuple[str, str]]:
        settings = [
            ("unix_socket_permissions", "0700"),
            ("max_connections", "100"),
            ("shared_buffers", "32MB"),
        ]
        if not self._durable:
            settings += [
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
            ]
        return settings + list(self._settings)

    def _temporary_root(self) -> str | None:
        """Where the folder goes: the usual temporary folder, unless the server's user could not
        reach it (a private ``TMPDIR`` under root's home): then ``/tmp`` or ``/var/tmp``."""
        if self._user is None or self._user.pw_uid == os.geteuid():
            return None
        for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
            if _others_can_reach(Path(candidate)):
                return candidate
        raise PostgresServerError(
            f"no temporary folder that user {self._user.pw_name!r} can reach: set TMPDIR to one "
            "whose every parent others may enter (mode o+x)"
        )

    def _make_cluster(self) -> None:
        binaries = self._binaries()
        self._folder = Path(tempfile.mkdtemp(prefix="vmfailover-pg-", dir=self._temporary_root()))
        if self._user is not None and self._user.pw_uid != os.geteuid():
            os.chown(self._folder, self._user.pw_uid, self._user.pw_gid)
        os.chmod(self._folder, 0o700)
        command = [
            str(binaries / "initdb"),
            "-D",
            str(self._folder / "data"),
            "-U",
            _SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
            "--auth-local=trust",
        ]
        if self._tcp:
            password_file = self._folder / "password"
            password_file.write_text(self._password + "\n")
            os.chmod(password_file, 0o600)
            if self._user is not None and self._user.pw_uid != os.geteuid():
                os.chown(password_file, self._user.pw_uid, self._user.pw_gid)
            command += ["--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        else:
            command += ["--auth-host=reject"]
        user, group, extra_groups = self._identity()
        try:
            made = subprocess.run(
                command,
                capture_output=True,
                cwd=self._folder,
                env=self._environment(),
                timeout=self._start_timeout,
                check=False,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                (self._folder / "password").unlink()
        if made.returncode != 0:
            output = (made.stdout + made.stderr).decode(errors="replace")[-2000:]
            raise PostgresServerError(f"initdb failed ({made.returncode}):\n{output}")

    def _wait_ready(self) -> None:
        """Until ``postmaster.pid`` says ``ready`` (what ``pg_ctl -w`` waits for)."""
        process = self._process
        assert process is not None
        pid_file = self.folder / "data" / "postmaster.pid"
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                raise PostgresServerError(
                    f"the server exited with {process.returncode} while starting:\n"
                    f"{self._log_tail()}"
                )
            with contextlib.suppress(FileNotFoundError):
                lines = pid_file.read_text().splitlines()
                ours = len(lines) >= 8 and lines[0].strip() == str(process.pid)
                if ours and lines[7].strip() == "ready":
                    return
            time.sleep(0.01)
        self.stop(mode="immediate")
        raise PostgresServerError(
            f"the server did not become ready within {self._start_timeout} s:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"
