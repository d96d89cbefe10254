"""Backend files (``--backend dr.toml``): what they become, and every way one is refused.

The loader is checked here on its own (no vCenter or Hyper-V host is reached: the backends connect
on first use); tests/vsphere/test_cli_backend_file_vsphere.py and
tests/hyperv_backend/test_cli_backend_file_hyperv.py run the command line on a backend file
against the simulated vCenter and Hyper-V hosts.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from backend_file_support import (
    SECRET,
    certificate_pem,
    write,
    write_ca_bundle,
    write_password_file,
)
from vmfailover.backends.hyperv import HostConnection, HyperVBackend
from vmfailover.backends.vsphere import VCenter, VSphereBackend
from vmfailover.cli import main
from vmfailover.cli.backend_file import backend_file_options, is_backend_file, open_backend_file
from vmfailover.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
LAB_PLAN = ROOT / "examples" / "lab-plan.toml"
THUMBPRINT = ":".join(["ab"] * 32)

VSPHERE = """\
backend = "vsphere"

[[vcenter]]
site = "site-a"
host = "vcenter-a.example.com"
datacenter = "DC-A"
username = "dr@vsphere.local"
password_env = "DR_VCENTER_PASSWORD"
ca_bundle = "certs/vcenter-a.pem"

[[vcenter]]
site = "site-b"
host = "vcenter-b.example.com"
port = 8443
username = "dr@vsphere.local"
password_file = "vcenter-b.password"
thumbprint = "{thumbprint}"
timeout = 30
task_timeout = 1800.5
isolated_networks = ["Test-Net", "Test-App"]
"""

VSPHERE_YAML = """\
backend: vsphere
vcenter:
  - site: site-a
    host: vcenter-a.example.com
    datacenter: DC-A
    username: dr@vsphere.local
    password_env: DR_VCENTER_PASSWORD
    ca_bundle: certs/vcenter-a.pem
  - site: site-b
    host: vcenter-b.example.com
    port: 8443
    username: dr@vsphere.local
    password_file: vcenter-b.password
    thumbprint: "{thumbprint}"
    timeout: 30
    task_timeout: 1800.5
    isolated_networks: [Test-Net, Test-App]
"""

HYPERV = """\
backend = "hyperv"
replication_frequency = 30
sync_timeout = 120.0

[[host]]
name = "HV-A1"
site = "site-a"
address = "hv-a1.corp.example.com"
ca_file = "hv-a1.pem"

[[host]]
name = "HV-B1"
site = "site-b"
auth = "ntlm"
username = "CORP\\\\dr"
password_env = "DR_HYPERV_PASSWORD"
isolated_networks = ["Isolated"]
"""


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DR_VCENTER_PASSWORD", SECRET)
    monkeypatch.setenv("DR_HYPERV_PASSWORD", SECRET)
    write_password_file(tmp_path / "vcenter-b.password", f"  {SECRET}-b\n")
    write_ca_bundle(tmp_path / "certs" / "vcenter-a.pem")
    write_ca_bundle(tmp_path / "hv-a1.pem")
    return tmp_path


def refused(path: Path) -> list[str]:
    """Each finding of the refusal, as text; none may show a secret."""
    with pytest.raises(ValidationError) as error:
        open_backend_file(path)
    texts = [str(finding) for finding in error.value.findings]
    assert not any(SECRET in text for text in texts)
    assert SECRET not in str(error.value)
    return texts


def test_a_vsphere_file_becomes_vcenter_settings(secrets: Path) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    name, options = backend_file_options(path)
    assert name == "vsphere"
    site_a, site_b = options["vcenters"]
    assert site_a == VCenter(
        site="site-a",
        host="vcenter-a.example.com",
        datacenter="DC-A",
        credentials=site_a.credentials,
        ca_bundle=str(secrets / "certs" / "vcenter-a.pem"),  # relative to the file
    )
    assert site_a.credentials.username == "dr@vsphere.local"
    assert site_a.credentials.secret.reveal() == SECRET
    assert site_b.credentials.secret.reveal() == f"{SECRET}-b"  # stripped
    assert (site_b.port, site_b.timeout, site_b.task_timeout) == (8443, 30, 1800.5)
    assert site_b.thumbprint == "ab" * 32
    assert site_b.isolated_networks == {"Test-Net", "Test-App"}
    assert not site_a.insecure and not site_b.insecure  # verification on unless asked
    backend = open_backend_file(path)
    assert isinstance(backend, VSphereBackend)
    assert backend.sites == ("site-a", "site-b")
    for shown in (repr(backend), repr(site_a), str(site_b), repr(options)):
        assert SECRET not in shown


def test_the_same_file_in_yaml_reads_the_same(secrets: Path) -> None:
    toml = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    yaml = write(secrets, "dr.yaml", VSPHERE_YAML.format(thumbprint=THUMBPRINT))
    assert backend_file_options(yaml) == backend_file_options(toml)
    assert is_backend_file(str(yaml)) and is_backend_file("DR.YML") and is_backend_file("a.toml")
    assert not is_backend_file("mysite.dr:backend") and not is_backend_file("lab")


def test_a_hyperv_file_becomes_host_connections(secrets: Path) -> None:
    path = write(secrets, "hv.toml", HYPERV)
    name, options = backend_file_options(path)
    assert name == "hyperv"
    assert (options["replication_frequency"], options["sync_timeout"]) == (30, 120.0)
    a1, b1 = options["hosts"]
    assert a1 == HostConnection(
        name="HV-A1",
        site="site-a",
        address="hv-a1.corp.example.com",
        ca_file=str(secrets / "hv-a1.pem"),
    )
    assert a1.credentials is None  # Kerberos from the ticket cache
    assert a1.verify_tls and a1.tls
    assert b1.credentials is not None and b1.credentials.username == "CORP\\dr"
    assert b1.credentials.secret.reveal() == SECRET
    backend = open_backend_file(path)
    assert isinstance(backend, HyperVBackend)
    assert backend.replication_frequency == 30
    assert SECRET not in repr(backend) and SECRET not in repr(b1)


def test_a_literal_password_is_refused_and_never_shown(secrets: Path) -> None:
    text = VSPHERE.format(thumbprint=THUMBPRINT).replace(
        'password_env = "DR_VCENTER_PASSWORD"', f'password = "{SECRET}"'
    )
    path = write(secrets, "dr.toml", text)
    (finding,) = refused(path)
    assert finding.startswith(f"{path}, vcenter[0].password (line 8, column 1): ")
    assert "a password is not kept in the backend file" in finding
    assert "password_env" in finding and "password_file" in finding


def test_unknown_keys_are_named_with_their_lines(secrets: Path) -> None:
    text = (
        VSPHERE.format(thumbprint=THUMBPRINT).replace(
            "[[vcenter]]\nsite", "verify = true\n\n[[vcenter]]\nsite", 1
        )
        + 'hostname = "x"\n'
    )
    path = write(secrets, "dr.toml", text)
    first, second = refused(path)
    assert first.startswith(f"{path}, verify (line 3, column 1): is not a setting of this file")
    assert second.startswith(f"{path}, vcenter[1].hostname (line 23, column 1): is not a setting")
    assert "host" in second and "isolated_networks" in second  # the keys it takes


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'port = "443"',
            'vcenter[0].port (line 10, column 1): must be a whole number, got text "443"',
        ),
        ("insecure = 1", "vcenter[0].insecure (line 10, column 1): must be true or false, got 1"),
        (
            "timeout = nan",
            "vcenter[0].timeout (line 10, column 1): must be a finite number, got nan",
        ),
        ("read_max_age = inf", "vcenter[0].read_max_age (line 10, column 1): must be a finite"),
        ("task_timeout = -inf", "vcenter[0].task_timeout (line 10, column 1): must be a finite"),
        (
            'isolated_networks = "Test"',
            "vcenter[0].isolated_networks (line 10, column 1): must be a list of text",
        ),
        ("path = 3", "vcenter[0].path (line 10, column 1): must be text, got 3"),
        ("timeout = 0", "vcenter[0].timeout (line 10, column 1): VCenter timeout: must be > 0"),
        ('thumbprint = "ab:cd"', "vcenter[0].thumbprint (line 10, column 1): VCenter thumbprint:"),
    ],
)
def test_wrong_values_name_key_and_line(secrets: Path, line: str, expected: str) -> None:
    text = VSPHERE.format(thumbprint=THUMBPRINT).replace(
        'ca_bundle = "certs/vcenter-a.pem"\n', f'ca_bundle = "certs/vcenter-a.pem"\n{line}\n'
    )
    if "thumbprint" in line:
        text = text.replace('ca_bundle = "certs/vcenter-a.pem"\n', "", 1)
        expected = expected.replace("line 10", "line 9")
    (finding,) = refused(write(secrets, "dr.toml", text))
    assert finding.startswith(f"{secrets / 'dr.toml'}, {expected}"), finding


def test_yaml_places_come_from_the_yaml_reader(secrets: Path) -> None:
    text = VSPHERE_YAML.format(thumbprint=THUMBPRINT).replace("timeout: 30", "timeout: .nan")
    path = write(secrets, "dr.yaml", text)
    (finding,) = refused(path)
    assert finding.startswith(f"{path}, vcenter[1].timeout (line 15, column 5): must be a finite")


def test_a_missing_environment_variable_is_named_not_its_value(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    monkeypatch.delenv("DR_VCENTER_PASSWORD")
    (finding,) = refused(path)
    assert finding.startswith(f"{path}, vcenter[0].password_env (line 8, column 1): ")
    assert "the environment variable DR_VCENTER_PASSWORD is not set" in finding
    monkeypatch.setenv("DR_VCENTER_PASSWORD", "")
    (finding,) = refused(path)
    assert "the environment variable DR_VCENTER_PASSWORD is empty" in finding


def test_password_files_that_are_missing_or_empty(secrets: Path) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    (secrets / "vcenter-b.password").write_text(" \n", encoding="utf-8")
    (finding,) = refused(path)
    password_file = str(secrets / "vcenter-b.password")
    place = "vcenter[1].password_file (line 16, column 1)"
    assert f"{place}: the password file {password_file!r} is empty" in finding
    (secrets / "vcenter-b.password").unlink()
    (finding,) = refused(path)
    assert "does not exist" in finding


def test_credentials_are_needed_once(secrets: Path) -> None:
    both = VSPHERE.format(thumbprint=THUMBPRINT).replace(
        'password_env = "DR_VCENTER_PASSWORD"\n',
        'password_env = "DR_VCENTER_PASSWORD"\npassword_file = "vcenter-b.password"\n',
    )
    (finding,) = refused(write(secrets, "both.toml", both))
    assert (
        "vcenter[0].password_file (line 9, column 1): give password_env or password_file" in finding
    )
    no_user = VSPHERE.format(thumbprint=THUMBPRINT).replace(
        'username = "dr@vsphere.local"\n', "", 1
    )
    (finding,) = refused(write(secrets, "nouser.toml", no_user))
    assert "vcenter[0].password_env (line 7, column 1): is given without a username" in finding
    nothing = no_user.replace('password_env = "DR_VCENTER_PASSWORD"\n', "")
    (finding,) = refused(write(secrets, "nothing.toml", nothing))
    assert "vcenter[0] (line 3, column 1): says no username" in finding
    no_password = HYPERV.replace('password_env = "DR_HYPERV_PASSWORD"\n', "")
    (finding,) = refused(write(secrets, "hv.toml", no_password))
    assert (
        "host[1].username (line 15, column 1): needs one place the password comes from" in finding
    )


def test_the_backends_own_checks_are_placed_in_the_file(secrets: Path) -> None:
    frequency = HYPERV.replace("replication_frequency = 30", "replication_frequency = 60")
    (finding,) = refused(write(secrets, "hv.toml", frequency))
    assert finding.startswith(f"{secrets / 'hv.toml'}, replication_frequency (line 2, column 1): ")
    assert "60 is not 30, 300 or 900" in finding
    timeouts = HYPERV.replace('site = "site-a"\n', 'site = "site-a"\nread_timeout = 5\n')
    (finding,) = refused(write(secrets, "hv.toml", timeouts))
    assert "host[0].read_timeout (line 8, column 1): " in finding and "must exceed" in finding
    insecure = VSPHERE.format(thumbprint=THUMBPRINT).replace(
        'datacenter = "DC-A"', 'datacenter = "DC-A"\ninsecure = true'
    )
    (finding,) = refused(write(secrets, "dr.toml", insecure))
    assert "vcenter[0].insecure (line 7, column 1): " in finding and "cannot be combined" in finding
    twice = VSPHERE.format(thumbprint=THUMBPRINT).replace('site = "site-b"', 'site = "site-a"')
    (finding,) = refused(write(secrets, "dr.toml", twice))
    assert "vcenter (line 3, column 1): site 'site-a': has two VCenter settings" in finding


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[vcenter]]\nsite = 'a'\n", 'backend: says no backend (start the file with backend = "'),
        (
            'backend = "esx"\n',
            'backend (line 1, column 1): text "esx" is not an installed backend',
        ),
        ('backend = "vsphere"\n', "vcenter: is missing"),
        (
            'backend = "vsphere"\nvcenter = 3\n',
            "vcenter (line 2, column 1): must be a list of tables",
        ),
        (
            'backend = "vsphere"\n[vcenter]\nsite = "a"\n',
            "vcenter (line 2, column 1): must be a list",
        ),
        ('backend = "vsphere"\n[[vcenter]\n', "line 2, column 10: is not valid TOML"),
    ],
)
def test_the_shape_of_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "dr.toml", text)
    texts = refused(path)
    assert any(t.startswith(f"{path}, {expected}") for t in texts), texts


def test_on_the_command_line(
    secrets: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VSPHERE.format(thumbprint=THUMBPRINT).replace("timeout = 30", "timeout = nan")
    path = write(secrets, "dr.toml", text)
    journal = str(secrets / "journal.db")
    for argv in (
        ["run", str(LAB_PLAN), "--kind", "test", "--backend", str(path), "--journal", journal],
        ["validate", str(LAB_PLAN), "--backend", str(path)],
        ["cleanup", "no-such-run", "--backend", str(path), "--journal", journal],
    ):
        assert main(argv, out=io.StringIO()) == 3, argv
        err = capsys.readouterr().err
        # about the backend file, not the plan file
        assert re.search(
            rf"^vmfailover: {re.escape(str(path))}, vcenter\[1\]\.timeout \(line 18", err
        ), err
        assert SECRET not in err
    assert main(["validate", str(LAB_PLAN), "--backend", str(secrets / "none.toml")]) == 2
    assert "the backend file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["validate", str(LAB_PLAN), "--backend", str(path), "--lab"])


def test_the_documented_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = docs.split("### Backend files")[1].split("\n## ")[0].split("\n### ")[0]
    (toml,) = re.findall(r"```toml\n(.*?)\n```", section, flags=re.DOTALL)
    (yaml,) = re.findall(r"```yaml\n(.*?)\n```", section, flags=re.DOTALL)
    monkeypatch.setenv("VCENTER_A_PASSWORD", SECRET)
    monkeypatch.setenv("HYPERV_PASSWORD", SECRET)
    write_password_file(tmp_path / "secrets" / "vc-b", SECRET)
    write_ca_bundle(tmp_path / "certs" / "vc-a.pem")
    write_ca_bundle(tmp_path / "certs" / "vc-b.pem")
    name, options = backend_file_options(write(tmp_path, "dr.toml", toml))
    assert name == "vsphere" and [v.site for v in options["vcenters"]] == ["site-a", "site-b"]
    name, options = backend_file_options(write(tmp_path, "hv.yaml", yaml))
    assert name == "hyperv" and [h.name for h in options["hosts"]] == ["HV-A1", "HV-B1"]
    assert options["hosts"][1].credentials.username == "CORP\\svc-dr"
    # the refusal the section shows is what a file with those two mistakes gets
    broken = toml.replace('password_env = "VCENTER_A_PASSWORD"', f'password = "{SECRET}"')
    broken = broken.replace("timeout = 60", "timeout = nan")
    path = write(tmp_path, "dr.toml", broken)
    shown = [f"\n    {finding.replace(str(path), 'dr.toml')}\n" for finding in refused(path)]
    assert len(shown) == 2 and all(line in section for line in shown)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "dr.yaml: is empty"),
        (
            "- backend\n",
            "dr.yaml: must be a table of keys (backend, vcenter, host or options), got a list",
        ),
        (
            "backend: &b vsphere\n",
            "dr.yaml, line 1, column 10: the anchor &b is not allowed in a backend file",
        ),
    ],
)
def test_yaml_the_reader_refuses(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "dr.yaml", text)
    (finding,) = refused(path)
    assert finding.replace(f"{tmp_path}/", "").startswith(expected), finding
    assert "plan" not in finding


PASSWORD_PLACE = "vcenter[1].password_file (line 16, column 1)"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o700 | 0o001])
def test_a_password_file_others_may_use_is_refused_like_an_ssh_key(
    secrets: Path, mode: int
) -> None:
    """POSIX only by its nature: on Windows the mode bits say nothing and are not checked."""
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    password_file = secrets / "vcenter-b.password"
    password_file.chmod(mode)
    with pytest.raises(ValidationError) as error:
        open_backend_file(path)
    (finding,) = error.value.findings
    assert str(finding.item) == f"{path}, {PASSWORD_PLACE}"
    assert finding.message == (
        f"the password file {str(password_file)!r} is open to group or others "
        f"(mode {mode:04o}); like an SSH private key, it must be readable by its owner alone"
    )
    assert finding.hint == f"chmod 600 {password_file}"
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_password_file_its_owner_alone_may_read_is_read(secrets: Path, mode: int) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    (secrets / "vcenter-b.password").chmod(mode)
    _, options = backend_file_options(path)
    assert options["vcenters"][1].credentials.secret.reveal() == f"{SECRET}-b"


def test_a_password_file_that_is_a_folder_or_no_text_or_unreadable(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    password_file = secrets / "vcenter-b.password"
    password_file.unlink()
    password_file.mkdir()
    (finding,) = refused(path)
    assert f"{PASSWORD_PLACE}: the password file {str(password_file)!r} is a directory" in finding
    password_file.rmdir()
    write_password_file(password_file, "")
    password_file.write_bytes(b"\xff\xfe" + SECRET.encode())
    (finding,) = refused(path)
    assert f"{PASSWORD_PLACE}: the password file {str(password_file)!r} is not UTF-8 text" in (
        finding
    )
    password_file.write_text("\n\n", encoding="utf-8")
    (finding,) = refused(path)
    assert "is empty (write the password into it, and only it)" in finding
    # An unreadable file: the suite runs as root too, whom mode 000 does not stop, so the
    # operating system's refusal is given at the one read.
    password_file.write_text(SECRET, encoding="utf-8")
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == password_file:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    (finding,) = refused(path)
    assert f"the password file {str(password_file)!r} cannot be read: Permission denied" in (
        finding
    )


def test_a_password_fifo_is_refused_without_blocking(secrets: Path) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    password_file = secrets / "vcenter-b.password"
    password_file.unlink()
    os.mkfifo(password_file, 0o600)
    (finding,) = refused(path)
    assert f"the password file {str(password_file)!r} is not a regular file" in finding


CA_PLACE = "vcenter[0].ca_bundle (line 9, column 1)"


def test_a_ca_bundle_is_checked_when_the_file_is_read(secrets: Path) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    bundle = secrets / "certs" / "vcenter-a.pem"
    shown = repr(str(bundle))
    bundle.unlink()
    (finding,) = refused(path)
    assert finding.startswith(f"{path}, {CA_PLACE}: the CA bundle {shown} does not exist")
    bundle.mkdir()
    (finding,) = refused(path)
    assert f"{CA_PLACE}: the CA bundle {shown} is a directory, not a file" in finding
    bundle.rmdir()
    bundle.write_text("not a certificate\n", encoding="ascii")
    (finding,) = refused(path)
    assert f"{CA_PLACE}: the CA bundle {shown} holds no PEM certificate" in finding
    assert "-----BEGIN CERTIFICATE-----" in finding  # the hint says what one looks like
    bundle.write_text(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        encoding="ascii",
    )
    (finding,) = refused(path)
    assert f"{CA_PLACE}: the CA bundle {shown} cannot be loaded: " in finding
    write_ca_bundle(bundle)  # a real certificate, after text: a bundle as ssl reads it
    bundle.write_text("# the site's CA\n" + certificate_pem(), encoding="ascii")
    _, options = backend_file_options(path)
    assert options["vcenters"][0].ca_bundle == str(bundle)


def test_a_hyperv_ca_file_is_checked_with_the_other_problems(secrets: Path) -> None:
    (secrets / "hv-a1.pem").unlink()
    text = HYPERV.replace("replication_frequency = 30", "replication_frequency = nan")
    path = write(secrets, "hv.toml", text)
    first, second = refused(path)
    assert first.startswith(f"{path}, replication_frequency (line 2, column 1): must be a whole")
    assert second.startswith(
        f"{path}, host[0].ca_file (line 9, column 1): "
        f"the CA bundle {str(secrets / 'hv-a1.pem')!r} does not exist"
    )


def test_validate_refuses_a_shared_password_file_with_the_fix(
    secrets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(secrets, "dr.toml", VSPHERE.format(thumbprint=THUMBPRINT))
    password_file = secrets / "vcenter-b.password"
    password_file.chmod(0o644)
    assert main(["validate", str(LAB_PLAN), "--backend", str(path)], out=io.StringIO()) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"vmfailover: {path}, {PASSWORD_PLACE}: the password file ")
    assert "(mode 0644)" in err and f"(chmod 600 {password_file})" in err
    assert SECRET not in err


def test_paths_with_a_nul_character_are_refused_as_no_path(secrets: Path) -> None:
    text = (
        VSPHERE.format(thumbprint=THUMBPRINT)
        .replace('"certs/vcenter-a.pem"', '"certs/a\\u0000.pem"')
        .replace('"vcenter-b.password"', '"b\\u0000.password"')
    )
    first, second = refused(write(secrets, "dr.toml", text))
    assert CA_PLACE in first and "is no path: it holds a NUL character" in first
    assert PASSWORD_PLACE in second and "is no path: it holds a NUL character" in second
