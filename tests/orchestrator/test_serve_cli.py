"""``vmfailover serve`` refuses bad settings with our exit codes before it serves."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vmfailover.cli import EXIT_INVALID, EXIT_USAGE, main
from vmfailover.cli.serve import open_lease
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
