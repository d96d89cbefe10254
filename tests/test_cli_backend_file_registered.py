"""A backend another package registers, named in a backend file: ``backend = "acme"`` with an
``[options]`` table, checked against the factory's signature.

The fake package is installed for real: a module and its ``.dist-info`` (METADATA and an
``entry_points.txt`` registering it under ``vmfailover.backends``) on ``sys.path``, found by
:mod:`importlib.metadata` as a pip-installed package is.
"""

from __future__ import annotations

import io
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend_file_support import SECRET, write, write_ca_bundle, write_password_file
from vmfailover.backends import available_backends
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli import main
from vmfailover.cli.backend_file import backend_file_options, open_backend_file
from vmfailover.errors import ValidationError
from vmfailover.model import Credentials

ROOT = Path(__file__).resolve().parents[1]
LAB_PLAN = ROOT / "examples" / "lab-plan.toml"
MODULE = "acme_dr_backend"

PACKAGE = '''\
"""A third-party DR backend: the in-memory lab, recording how it was asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmfailover.backends.memory.lab import lab
from vmfailover.errors import ValidationError
from vmfailover.model import Credentials

calls: list[dict[str, Any]] = []


def connect(
    endpoint: str,
    *,
    credentials: Credentials,
    port: int = 443,
    timeout: float = 30.0,
    verify: bool = True,
    regions: tuple[str, ...] = ("eu",),
    ca_bundle: str | None = None,
    state_dir: Path | None = None,
) -> Any:
    if not 0 < port < 65536:
        raise ValidationError.of("acme", f"port {port} is not a TCP port")
    calls.append(dict(locals()))
    return lab()


def open_store(*, bucket: str, **settings: Any) -> Any:
    calls.append({"bucket": bucket, **settings})
    return lab()
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The package installed: its module, the backends ``acme`` and ``acme-store``."""
    site = tmp_path / "site-packages"
    (site / "acme_dr-1.0.dist-info").mkdir(parents=True)
    (site / f"{MODULE}.py").write_text(PACKAGE, encoding="utf-8")
    (site / "acme_dr-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-dr\nVersion: 1.0\n", encoding="utf-8"
    )
    (site / "acme_dr-1.0.dist-info" / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [vmfailover.backends]
            acme = {MODULE}:connect
            acme-store = {MODULE}:open_store
            """),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ACME_PASSWORD", SECRET)
    write_ca_bundle(tmp_path / "acme-ca.pem")
    import importlib

    package = importlib.import_module(MODULE)
    yield package
    sys.modules.pop(MODULE, None)


ACME = """\
backend = "acme"

[options]
endpoint = "https://dr.acme.example"
port = 8443
timeout = 12.5
regions = ["eu", "us"]
ca_bundle = "acme-ca.pem"
state_dir = "state"
username = "dr-operator"
password_env = "ACME_PASSWORD"
"""


def refused(path: Path) -> list[str]:
    with pytest.raises(ValidationError) as error:
        open_backend_file(path)
    assert SECRET not in str(error.value)
    return [str(finding) for finding in error.value.findings]


def test_the_package_is_registered_through_its_entry_point(acme: Any) -> None:
    assert {"acme", "acme-store"} <= set(available_backends())


def test_options_become_the_factorys_keyword_arguments(acme: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "acme.toml", ACME)
    name, options = backend_file_options(path)
    assert name == "acme"
    credentials = options.pop("credentials")
    assert isinstance(credentials, Credentials)
    assert credentials.username == "dr-operator" and credentials.secret.reveal() == SECRET
    assert options == {
        "endpoint": "https://dr.acme.example",
        "port": 8443,
        "timeout": 12.5,
        "regions": ("eu", "us"),  # a list in the file, the tuple the annotation says
        "ca_bundle": str(tmp_path / "acme-ca.pem"),  # relative to the file
        "state_dir": tmp_path / "state",  # a Path, relative to the file
    }
    backend = open_backend_file(path)
    assert isinstance(backend, MemoryBackend)
    (call,) = acme.calls[-1:]
    assert call["credentials"] == credentials and call["verify"] is True  # defaults left alone


def test_the_command_line_validates_on_it(
    acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "acme.yaml", "backend: acme-store\noptions:\n  bucket: dr\n  tier: 2\n")
    out = io.StringIO()
    assert main(["validate", str(LAB_PLAN), "--backend", str(path)], out=out) == 0, (
        capsys.readouterr().err
    )
    assert acme.calls[-1] == {"bucket": "dr", "tier": 2}  # **settings takes any key


def test_unknown_options_name_what_the_factory_takes(acme: Any, tmp_path: Path) -> None:
    text = ACME.replace("port = 8443", "prot = 8443").replace(
        'backend = "acme"', 'backend = "acme"\nendpoint = "x"'
    )
    path = write(tmp_path, "acme.toml", text)
    first, second = refused(path)
    assert first.startswith(f"{path}, endpoint (line 2, column 1): is not a setting of this file")
    assert "go in its [options] table" in first
    assert second.startswith(
        f"{path}, options.prot (line 6, column 1): is not an option of backend 'acme' "
        "(backend 'acme' takes: ca_bundle, endpoint, password_env, password_file, port, "
        "regions, state_dir, timeout, username, verify)"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'port = "8443"',
            'options.port (line 5, column 1): must be a whole number, got text "8443"',
        ),
        ("port = true", "options.port (line 5, column 1): must be a whole number, got true"),
        ("port = nan", "options.port (line 5, column 1): must be a whole number, got nan"),
        ("port = 1\ntimeout = inf", "options.timeout (line 6, column 1): must be a finite number"),
        ("regions = [1, 2]", "options.regions (line 5, column 1): must be a list of text, got"),
        ("verify = 1", "options.verify (line 5, column 1): must be true or false, got 1"),
        ("state_dir = 3", "options.state_dir (line 5, column 1): must be a path (text)"),
    ],
)
def test_values_are_checked_against_the_annotations(
    acme: Any, tmp_path: Path, line: str, expected: str
) -> None:
    text = ACME.replace("port = 8443", line).replace("timeout = 12.5\n", "", "timeout" in line)
    if "regions" in line:
        text = text.replace('regions = ["eu", "us"]\n', "")
    if "state_dir" in line:
        text = text.replace('state_dir = "state"\n', "")
    path = write(tmp_path, "acme.toml", text)
    (finding,) = refused(path)
    assert finding.startswith(f"{path}, {expected}"), finding


def test_an_option_the_factory_needs_is_named(acme: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "acme.toml", ACME.replace('endpoint = "https://dr.acme.example"\n', ""))
    (finding,) = refused(path)
    assert finding.startswith(
        f"{path}, options (line 3, column 1): backend 'acme' needs the option"
    )
    assert "endpoint" in finding
    path = write(tmp_path, "store.toml", 'backend = "acme-store"\n')
    (finding,) = refused(path)
    assert "backend 'acme-store' needs the option bucket" in finding


def test_credentials_come_from_a_password_source(acme: Any, tmp_path: Path) -> None:
    literal = ACME.replace('password_env = "ACME_PASSWORD"', f'password = "{SECRET}"')
    (finding,) = refused(write(tmp_path, "acme.toml", literal))
    assert "options.password (line 11, column 1): a password is not kept in the backend file" in (
        finding
    )
    no_user = ACME.replace('username = "dr-operator"\n', "")
    (finding,) = refused(write(tmp_path, "acme.toml", no_user))
    assert "options.password_env (line 10, column 1): is given without a username" in finding
    nothing = no_user.replace('password_env = "ACME_PASSWORD"\n', "")
    (finding,) = refused(write(tmp_path, "acme.toml", nothing))
    assert "options (line 3, column 1): says no username" in finding  # credentials is required
    written = ACME.replace('username = "dr-operator"', 'credentials = "dr-operator:pw"')
    (finding, *_) = refused(write(tmp_path, "acme.toml", written))
    assert "options.credentials (line 10, column 1): credentials are not written in the" in finding
    password_file = write_password_file(tmp_path / "acme.password", SECRET, mode=0o644)
    from_file = ACME.replace('password_env = "ACME_PASSWORD"', 'password_file = "acme.password"')
    (finding,) = refused(write(tmp_path, "acme.toml", from_file))
    assert (
        f"options.password_file (line 11, column 1): the password file {str(password_file)!r} "
        "is open to group or others (mode 0644)"
    ) in finding
    assert f"(chmod 600 {password_file})" in finding
    password_file.chmod(0o600)
    _, options = backend_file_options(tmp_path / "acme.toml")
    assert options["credentials"].secret.reveal() == SECRET


def test_a_backend_without_credentials_reads_no_password(acme: Any, tmp_path: Path) -> None:
    text = 'backend = "acme-store"\n[options]\nbucket = "dr"\npassword_env = "ACME_PASSWORD"\n'
    (finding,) = refused(write(tmp_path, "store.toml", text))
    assert finding.startswith(
        f"{tmp_path / 'store.toml'}, options.password_env (line 4, column 1): backend "
        "'acme-store' takes no credentials, so no password is read for it"
    )
    literal = text.replace('password_env = "ACME_PASSWORD"', f'password = "{SECRET}"')
    (finding,) = refused(write(tmp_path, "store.toml", literal))
    assert "options.password (line 4, column 1): a password is not kept" in finding


def test_a_ca_bundle_option_is_checked_when_read(acme: Any, tmp_path: Path) -> None:
    (tmp_path / "acme-ca.pem").write_text("no certificate\n", encoding="ascii")
    (finding,) = refused(write(tmp_path, "acme.toml", ACME))
    assert finding.startswith(
        f"{tmp_path / 'acme.toml'}, options.ca_bundle (line 8, column 1): the CA bundle "
    )
    assert "holds no PEM certificate" in finding


def test_the_options_table_must_be_a_table(acme: Any, tmp_path: Path) -> None:
    (finding,) = refused(write(tmp_path, "acme.yaml", "backend: acme\noptions: [1]\n"))
    assert (
        "options (line 2, column 1): must be a table of the settings of backend 'acme', got a list"
        in finding
    )


def test_the_in_memory_backend_is_named_the_same_way(tmp_path: Path) -> None:
    """Every installed backend is described the same way, the built-in memory one too."""
    path = write(tmp_path, "mem.toml", 'backend = "memory"\n[options]\nrecovery_point_limit = 3\n')
    assert backend_file_options(path) == ("memory", {"recovery_point_limit": 3})
    assert isinstance(open_backend_file(path), MemoryBackend)
    (finding,) = refused(write(tmp_path, "mem.toml", 'backend = "memory"\n[options]\nseed = 1.5\n'))
    assert "options.seed (line 3, column 1): must be a whole number, got 1.5" in finding


def test_the_factorys_own_refusal_is_placed_at_the_option_it_names(
    acme: Any, tmp_path: Path
) -> None:
    path = write(tmp_path, "acme.toml", ACME.replace("port = 8443", "port = 70000"))
    (finding,) = refused(path)
    assert finding == f"{path}, options.port (line 5, column 1): acme: port 70000 is not a TCP port"


def test_the_documented_example_loads(acme: Any, tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = docs.split("### Backends of other packages in a backend file")[1].split("\n## ")[0]
    (toml,) = re.findall(r"```toml\n(.*?)\n```", section, flags=re.DOTALL)
    write_ca_bundle(tmp_path / "certs" / "acme.pem")
    write_password_file(tmp_path / "secrets" / "acme", SECRET)
    name, options = backend_file_options(write(tmp_path, "acme.toml", toml))
    assert name == "acme" and options["regions"] == ("eu", "us")
    assert options["credentials"].secret.reveal() == SECRET
    assert isinstance(open_backend_file(tmp_path / "acme.toml"), MemoryBackend)


def test_yaml_null_is_given_where_the_annotation_takes_none(acme: Any, tmp_path: Path) -> None:
    text = "backend: acme\noptions:\n  endpoint: x\n  username: u\n  password_env: ACME_PASSWORD\n"
    _, options = backend_file_options(write(tmp_path, "a.yaml", text + "  state_dir: null\n"))
    assert options["state_dir"] is None
    (finding,) = refused(write(tmp_path, "a.yaml", text + "  port: null\n"))
    assert "options.port (line 6, column 3): must be a whole number, got nothing (null)" in finding
