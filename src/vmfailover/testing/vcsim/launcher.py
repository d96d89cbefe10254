"""``VCSim``: govmomi's simulated vCenter in a child process, for tests and benchmarks.

The simulator is built from Debian's packages on first use (see :mod:`.build`), serves HTTPS with
a fresh self-signed certificate on a free 127.0.0.1 port, accepts exactly one user and password,
and stops cleanly. Test-only hooks on the launcher inject host failures and count SOAP round
trips at the HTTP layer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import attrs

from vmfailover.backends.vsphere.settings import VCenter
from vmfailover.errors import ValidationError, VMFailoverError
from vmfailover.model import Credentials
from vmfailover.testing.hyperv._tls import make_certificate
from vmfailover.testing.vcsim.build import build_launcher

__all__ = ["VCSim", "VCSimError", "VCSimInventory"]

_START_TIMEOUT = 120.0
_STOP_TIMEOUT = 15.0


class VCSimError(VMFailoverError):
    """The simulator did not start, stop or answer a hook as it should."""


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError.of(
            f"VCSim {attribute.name}", f"must be a whole number >= 0, got {value!r}"
        )


@attrs.frozen
class VCSimInventory:
    """What the simulated vCenter holds at start (``simulator.VPX()`` with these counts).

    Per datacenter ``DC<n>``: clusters ``DC<n>_C<m>`` of ``cluster_hosts`` hosts
    (``DC<n>_C<m>_H<k>``), ``standalone_hosts`` hosts (``DC<n>_H<k>``), datastores
    ``LocalDS_<k>`` and distributed port groups ``DC<n>_DVPG<k>`` (plus the standard
    ``VM Network``), and ``vms`` VMs in every cluster and standalone host's root pool.
    """

    datacenters: int = attrs.field(default=2, validator=_count)
    clusters: int = attrs.field(default=1, validator=_count)
    cluster_hosts: int = attrs.field(default=2, validator=_count)
    standalone_hosts: int = attrs.field(default=0, validator=_count)
    datastores: int = attrs.field(default=1, validator=_count)
    portgroups: int = attrs.field(default=1, validator=_count)
    vms: int = attrs.field(default=2, validator=_count)
    autostart: bool = True

    def flags(self) -> list[str]:
        return [
            f"-datacenters={self.datacenters}",
            f"-clusters={self.clusters}",
            f"-cluster-hosts={self.cluster_hosts}",
            f"-standalone-hosts={self.standalone_hosts}",
            f"-datastores={self.datastores}",
            f"-portgroups={self.portgroups}",
            f"-vms={self.vms}",
            f"-autostart={'true' if self.autostart else 'false'}",
        ]


class VCSim:
    """A simulated vCenter, as a context manager::

        with VCSim() as sim:
            backend = VSphereBackend([sim.vcenter("site-a", datacenter="DC0"), ...])

    ``task_delay`` (milliseconds) keeps every task running that long after its work is done,
    as real vCenter tasks are, so waits are exercised for real.
    """

    def __init__(
        self,
        inventory: VCSimInventory | None = None,
        *,
        user: str = "vmfailover@vsphere.local",
        password: str | None = None,
        task_delay: int = 0,
        port: int = 0,
    ) -> None:
        self.inventory = inventory or VCSimInventory()
        self.user = user
        self._password = password or secrets.token_urlsafe(16)
        if isinstance(task_delay, bool) or not isinstance(task_delay, int) or task_delay < 0:
            raise ValidationError.of(
                "VCSim task_delay", f"must be milliseconds >= 0, got {task_delay!r}"
            )
        self.task_delay = task_delay
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""
        self.certificate_pem = ""
        self.thumbprint = ""
        self.build_seconds = 0.0
        self.start_seconds = 0.0

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self.running else "stopped"
        return f"VCSim({state}, user={self.user!r})"

    # --- life cycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.user, self._password)

    @property
    def ca_file(self) -> str:
        """A PEM file holding the simulator's (self-signed) certificate: a CA bundle for it."""
        assert self._folder is not None, "start the simulator first"
        return str(Path(self._folder.name) / "cert.pem")

    @property
    def log_file(self) -> str:
        assert self._folder is not None, "start the simulator first"
        return str(Path(self._folder.name) / "vcsim.log")

    def vcenter(self, site: str, *, datacenter: str | None = None, **options: Any) -> VCenter:
        """Settings for a backend site on this simulator, trusting its certificate."""
        options.setdefault("ca_bundle", self.ca_file)
        return VCenter(
            site=site,
            host=self.host,
            port=self.port,
            credentials=options.pop("credentials", self.credentials),
            datacenter=datacenter,
            **options,
        )

    def start(self) -> VCSim:
        if self.running:
            return self
        began = time.monotonic()
        binary = build_launcher()
        self.build_seconds = time.monotonic() - began
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="vmfailover-vcsim-")
            certificate = make_certificate("vmfailover-vcsim")
            folder = Path(self._folder.name)
            (folder / "cert.pem").write_text(certificate.certificate_pem)
            key = folder / "key.pem"
            key.write_text(certificate._key_pem)
            key.chmod(0o600)
            self.certificate_pem = certificate.certificate_pem
            der = ssl.PEM_cert_to_DER_cert(certificate.certificate_pem)
            self.thumbprint = hashlib.sha256(der).hexdigest()
        folder = Path(self._folder.name)
        command = [
            str(binary),
            f"-listen=127.0.0.1:{self._port}",
            *self.inventory.flags(),
            f"-user={self.user}",
            f"-password={self._password}",
            f"-cert={folder / 'cert.pem'}",
            f"-key={folder / 'key.pem'}",
            f"-task-delay={self.task_delay}",
        ]
        began = time.monotonic()
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                start_new_session=True,
            )
        line = self._first_line(_START_TIMEOUT)
        try:
            self.url = json.loads(line)["url"]
        except (ValueError, KeyError):
            self.stop()
            raise VCSimError(f"the simulator printed {line!r} instead of its URL") from None
        self._port = int(urllib.parse.urlsplit(self.url).port or 0)
        self.start_seconds = time.monotonic() - began
        return self

    def _first_line(self, timeout: float) -> str:
        process = self._process
        assert process is not None
        stdout = process.stdout
        assert stdout is not None
        found: list[bytes] = []
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not found or not found[0]:
            self.stop()
            log = Path(self.log_file).read_text(errors="replace")[-2000:]
            raise VCSimError(f"the simulator did not start within {timeout:g} s:\n{log}")
        return found[0].decode().strip()

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL if it does not stop in time)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused simulator cannot handle SIGTERM
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()

    def restart(self, *, down: float = 0.0, fresh: bool = False, timeout: float = 60.0) -> None:
        """Restart the simulated vCenter and return once it answers again.

        By default as a vCenter restart looks to its clients: every connection is cut (calls in
        flight fail, though their work may be done), every session ends, nothing answers for
        ``down`` seconds, then the same port serves again with the inventory as it was.
        ``fresh=True`` stops the process and starts a new one on the same port instead: the
        inventory starts afresh. Raises :class:`VCSimError` if it does not answer again
        within ``down`` plus ``timeout`` seconds.
        """
        if isinstance(down, bool) or not isinstance(down, int | float) or not 0 <= down < 3600:
            raise ValidationError.of(
                "VCSim.restart down", f"must be seconds from 0 to 3600, got {down!r}"
            )
        if fresh:
            self.stop()
            if down:
                time.sleep(down)
            self.start()
            return
        before = int(self._hook("stats", post=False)["restarts"])
        self._hook("restart", {"down_ms": str(int(down * 1000))})
        deadline = time.monotonic() + down + timeout
        while True:
            try:
                if int(self._hook("stats", post=False, timeout=2.0)["restarts"]) > before:
                    return
            except (OSError, VCSimError):
                pass  # down: connection refused or cut
            if time.monotonic() > deadline or not self.running:
                raise VCSimError(f"the simulator did not answer again within {down + timeout:g} s")
            time.sleep(0.05)

    def pause(self) -> None:
        """Freeze the simulator (SIGSTOP): calls hang until :meth:`resume` or their timeout."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __enter__(self) -> VCSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- test hooks ------------------------------------------------------------------------------

    def _hook(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        post: bool = True,
        timeout: float = 10.0,
    ) -> Any:
        if not self.running:
            raise VCSimError("the simulator is not running")
        base = self.url.rsplit("/sdk", 1)[0]
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(
            f"{base}/_vmfailover/{path}{query}",
            method="POST" if post else "GET",
            data=b"" if post else None,
        )
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise VCSimError(f"{path}: {error.read().decode(errors='replace').strip()}") from None

    def fail_host(self, name: str, *, power_off: bool = True) -> None:
        """The host stops answering vCenter (and loses power unless ``power_off=False``)."""
        params = {"name": name, "state": "notResponding"}
        if power_off:
            params["power"] = "poweredOff"
        self._hook("host", params)

    def restore_host(self, name: str) -> None:
        self._hook("host", {"name": name, "state": "connected", "power": "poweredOn"})

    def end_sessions(self) -> None:
        """End every session at once, as vCenter does when it drops them; connections stay."""
        self._hook("sessions/end")

    def soap_requests(self) -> int:
        """SOAP round trips served since start or the last :meth:`reset_soap_requests`."""
        return int(self._hook("stats", post=False)["soap_requests"])

    def reset_soap_requests(self) -> None:
        self._hook("stats/reset")
