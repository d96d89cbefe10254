"""Backends are found by name; a missing optional dependency names the extra to install."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from vmfailover import MemoryBackend, MissingExtraError, NotFoundError
from vmfailover.backends import available_backends, backend_class, open_backend


def test_memory_backend_is_built_in() -> None:
    assert "memory" in available_backends()
    assert backend_class("memory") is MemoryBackend
    assert isinstance(open_backend("memory", recovery_point_limit=3), MemoryBackend)


def test_unknown_backend_names_the_available_ones() -> None:
    with pytest.raises(NotFoundError, match=r"no backend named 'xen' \(available: .*memory"):
        backend_class("xen")


@pytest.mark.parametrize(
    ("name", "module", "extra"), [("vsphere", "pyVmomi", "vsphere"), ("hyperv", "pypsrp", "hyperv")]
)
def test_missing_extra_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str
) -> None:
    real = importlib.util.find_spec

    def find_spec(wanted: str, *args: object) -> object:
        return None if wanted == module else real(wanted, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtraError) as caught:
        backend_class(name)
    assert f"pip install 'vmfailover[{extra}]'" in str(caught.value)
    assert caught.value.extra == extra
    assert isinstance(caught.value, ImportError)


def test_importing_the_package_leaves_plugin_lookup_and_http_probes_for_later() -> None:
    """``import vmfailover`` stays light: these load when a backend is looked up by name or an
    HTTP probe runs (their cost is measured with ``python -X importtime``, not here)."""
    code = (
        "import sys, vmfailover; "
        "print(sorted(m for m in ('importlib.metadata', 'urllib.request', 'http.client', "
        "'statistics') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "memory" in available_backends()  # and the lookup still works when it is needed
