"""What the backend file tests share: files with a secret, a real CA certificate, a password file
of a given mode."""

from __future__ import annotations

import functools
from pathlib import Path

from vmfailover.testing.hyperv._tls import make_certificate

SECRET = "s3cret-Value!"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@functools.cache
def certificate_pem() -> str:
    """A real PEM certificate, for the CA bundles the files name."""
    return make_certificate("vmfailover test CA").certificate_pem


def write_ca_bundle(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(certificate_pem(), encoding="ascii")
    return path


def write_password_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path
