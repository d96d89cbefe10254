"""The command line on a Hyper-V backend file: validate, a test failover and its cleanup against two
simulated Hyper-V hosts over real HTTP (pypsrp, WinRM), each command reading the same ``hv.toml``.

The hosts take Basic authentication over plain HTTP, which the file must say out loud
(``tls = false``, ``encryption = "never"``): a local test host, never a production one. The
password comes from a file of its own and appears in no output.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vmfailover.cli import main
from vmfailover.model import PowerState
from vmfailover.testing.hyperv import HyperVHost

from .conftest import World, add_vm, build_world, replicate

NAMES = ("db01", "app01")

HOST = """\
[[host]]
name = "{name}"
site = "{site}"
address = "127.0.0.1"
port = {port}
tls = false
auth = "basic"
encryption = "never"
username = "{username}"
password_file = "{name}.password"
operation_timeout = 2
read_timeout = 10
connect_timeout = 5
pipeline_timeout = 30
"""

PLAN_FILE = """\
format_version = 1
name = "crm"
vms = ["db01", "app01"]

[[order.vms]]
name = "db01"
timeout = "1m"

[[order.vms]]
name = "app01"
after = ["db01"]
timeout = "1m"

[network.test]
"Prod" = "DR-Test"

[[test_reip]]
source = "192.168.1.*"
target = "172.16.1.*"
"""


@pytest.fixture
def crm(hyperv_host_factory: Callable[..., HyperVHost], tmp_path: Path) -> World:
    """db01 and app01 on hv-a, replicated to hv-b; hv.toml and crm.toml in ``tmp_path``."""
    world = build_world(hyperv_host_factory)
    for index, name in enumerate(NAMES):
        vm_id = add_vm(world, name, ip_addresses=[f"192.168.1.{21 + index}/24"])
        replica = replicate(world, vm_id)
        world.write(vm_id)
        world.backend.sync(replica.id)
    text = 'backend = "hyperv"\nreplication_frequency = 30\n'
    for host, site in ((world.a, "site-a"), (world.b, "site-b")):
        text += "\n" + HOST.format(
            name=host.name, site=site, port=host.port, username=host.username
        )
        password_file = tmp_path / f"{host.name}.password"
        password_file.write_text(f"{host.password}\n", encoding="utf-8")
        password_file.chmod(0o600)  # a password file others may read is refused
    (tmp_path / "hv.toml").write_text(text, encoding="utf-8")
    (tmp_path / "crm.toml").write_text(PLAN_FILE, encoding="utf-8")
    return world


def cli(world: World, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    err = capsys.readouterr().err
    for host in (world.a, world.b):
        assert host.password not in out.getvalue() and host.password not in err
    return code, out.getvalue() + err


def test_validate_run_and_cleanup_from_a_backend_file(
    crm: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VMFAILOVER_JOURNAL", raising=False)
    code, shown = cli(crm, capsys, "validate", "crm.toml", "--backend", "hv.toml")
    assert code == 0, shown
    assert "Checked against a test failover on hv.toml" in shown

    code, shown = cli(
        crm, capsys, "run", "crm.toml", "--kind", "test", "--backend", "hv.toml", "--json"
    )
    assert code == 0, shown
    report = json.loads(shown)
    assert report["result"] == "succeeded"
    copies = {vm["vm"]: vm["runs_as"] for vm in report["vms"]}
    assert set(copies) == set(NAMES) and all(copies.values())
    inventory = crm.backend.inventory()
    for name, copy in copies.items():
        vm = inventory.vm(copy)
        assert vm.power_state is PowerState.ON, name
        assert vm.host == "hv-b" and [nic.network for nic in vm.nics] == ["DR-Test"], name

    code, shown = cli(crm, capsys, "cleanup", report["run_id"], "--backend", "hv.toml")
    assert code == 0, shown
    assert "inventory restored" in shown
    remaining = {vm.id for vm in crm.backend.inventory().vms}
    assert not set(copies.values()) & remaining


def test_basic_over_http_must_be_said_out_loud(
    crm: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    backend_file = tmp_path / "hv.toml"
    backend_file.write_text(
        backend_file.read_text(encoding="utf-8").replace('encryption = "never"\n', "", 1),
        encoding="utf-8",
    )
    code, shown = cli(crm, capsys, "validate", "crm.toml", "--backend", "hv.toml")
    assert code == 3
    assert "hv.toml, host[0]" in shown and "Basic authentication over http" in shown
