"""The command line on a vSphere backend file: validate, a test failover and its cleanup against the
simulated vCenter, each command a process of its own reading the same ``dr.toml``.

The file trusts the simulator's certificate through ``ca_bundle`` (verification stays on), takes
the password from the environment, and the password appears in no output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.model import PowerState
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder

DB, APP = "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"
PASSWORD_VARIABLE = "DR_VCENTER_PASSWORD"

BACKEND_FILE = """\
# Two sites, each a datacenter of the simulated vCenter.
backend = "vsphere"

[[vcenter]]
site = "site-a"
host = "{host}"
port = {port}
datacenter = "DC0"
username = "{user}"
password_env = "{variable}"
ca_bundle = "{ca_bundle}"

[[vcenter]]
site = "site-b"
host = "{host}"
port = {port}
datacenter = "DC1"
username = "{user}"
password_env = "{variable}"
ca_bundle = "{ca_bundle}"
timeout = 30
isolated_networks = ["Test-Net"]
"""

PLAN_FILE = """\
format_version = 1
name = "shop"
vms = ["{db}", "{app}"]

[order]

[[order.vms]]
name = "{db}"
timeout = "1m"

[[order.vms]]
name = "{app}"
after = ["{db}"]
timeout = "1m"

[network.test]
"DC0_DVPG0" = "Test-Net"

[[test_reip]]
source = "192.168.20.*"
target = "172.16.20.*"
gateway = "172.16.20.1"
"""


@attrs.frozen
class Scene:
    sim: VCSim
    folder: Path
    backend_file: Path
    plan_file: Path
    replica_vms: dict[str, str]

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PASSWORD_VARIABLE: self.sim.credentials.secret.reveal()}
        env.pop("VMFAILOVER_JOURNAL", None)
        env.pop("VMFAILOVER_LAB", None)
        done = subprocess.run(
            [sys.executable, "-m", "vmfailover", *argv],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        secret = self.sim.credentials.secret.reveal()
        assert secret not in done.stdout and secret not in done.stderr
        return done

    def admin(self) -> VSphereBackend:
        return VSphereBackend(
            [
                self.sim.vcenter("site-a", datacenter="DC0"),
                self.sim.vcenter("site-b", datacenter="DC1"),
            ]
        )


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    with VCSim(VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=2)) as sim:
        with SceneBuilder(sim) as builder:
            builder.add_standard_portgroup("DC1", "DR-Net")
            builder.add_standard_portgroup("DC1", "Test-Net")
            for index, name in enumerate((DB, APP)):
                # a guest whose tools report its address once it runs: what readiness waits for
                builder.set_guest_id(name, "otherLinux64Guest")
                builder.address_guest(name, [f"192.168.20.{11 + index}/24"], "192.168.20.1")
        with VSphereBackend(
            [sim.vcenter("site-a", datacenter="DC0"), sim.vcenter("site-b", datacenter="DC1")]
        ) as admin:
            sources = {vm.name: vm for vm in admin.inventory().vms if vm.id.startswith("site-a:")}
            replica_vms = {}
            for index, name in enumerate((DB, APP)):
                replica = admin.create_replica(
                    sources[name].id,
                    f"DC1_C0_H{index}",
                    "site-b/LocalDS_0",
                    network_map={"DC0_DVPG0": "DR-Net"},
                )
                admin.sync(replica.id)
                replica_vms[name] = replica.replica_vm
        backend_file = tmp_path / "dr.toml"
        backend_file.write_text(
            BACKEND_FILE.format(
                host=sim.host,
                port=sim.port,
                user=sim.user,
                variable=PASSWORD_VARIABLE,
                ca_bundle=sim.ca_file,
            ),
            encoding="utf-8",
        )
        plan_file = tmp_path / "shop.toml"
        plan_file.write_text(PLAN_FILE.format(db=DB, app=APP), encoding="utf-8")
        yield Scene(sim, tmp_path, backend_file, plan_file, replica_vms)


def test_validate_run_and_cleanup_from_a_backend_file(scene: Scene) -> None:
    checked = scene.cli("validate", "shop.toml", "--backend", "dr.toml", "--kind", "test")
    assert checked.returncode == 0, checked.stderr
    assert "Checked against a test failover on dr.toml" in checked.stdout

    ran = scene.cli("run", "shop.toml", "--kind", "test", "--backend", "dr.toml", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    report = json.loads(ran.stdout)
    assert report["result"] == "succeeded"
    copies = {vm["vm"]: vm["runs_as"] for vm in report["vms"]}
    assert set(copies) == {DB, APP} and all(copies.values())
    # each copy came up on its test address, as its tools report it
    assert all(vm["outcome"] == "ready" and vm["addresses_verified"] for vm in report["vms"])
    assert {a.rpartition(".")[0] for vm in report["vms"] for a in vm["addresses"]} == {"172.16.20"}
    with scene.admin() as admin:
        inventory = admin.inventory()
        for name, copy in copies.items():
            vm = inventory.vm(copy)
            assert vm.power_state is PowerState.ON, name
            assert [nic.network for nic in vm.nics] == ["Test-Net"], name
            # the replicas themselves stay as they were
            assert inventory.vm(scene.replica_vms[name]).power_state is PowerState.OFF

    cleaned = scene.cli("cleanup", report["run_id"], "--backend", "dr.toml")
    assert cleaned.returncode == 0, cleaned.stderr + cleaned.stdout
    assert f"run {report['run_id']}:" in cleaned.stdout
    with scene.admin() as admin:
        remaining = {vm.id for vm in admin.inventory().vms}
    assert not set(copies.values()) & remaining


def test_a_wrong_password_and_a_missing_variable(scene: Scene) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "vmfailover", "validate", "shop.toml", "--backend", "dr.toml"],
        cwd=scene.folder,
        env={k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 3
    assert f"the environment variable {PASSWORD_VARIABLE} is not set" in missing.stderr
    assert "dr.toml, vcenter[0].password_env (line 10, column 1)" in missing.stderr
    assert "Traceback" not in missing.stderr
