"""The layers of ``../shared/DESIGN.md`` hold: every import in the package is one the table allows.

The check walks every module's syntax tree with :mod:`ast` (imports inside functions and
``TYPE_CHECKING`` blocks count too: a dependency for types is still a dependency) and compares
each import of ours against the table below, which is DESIGN.md's "who may import whom".
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vmfailover"

#: Layer -> the layers it may import (besides itself). "leaf" modules (tables, durations) may be
#: used by any layer; the public API package (``vmfailover/__init__.py``) is importable by the
#: surfaces only, since it imports everything.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"leaf"}),
    "leaf": frozenset({"core.errors"}),
    "policy": frozenset({"core.model", "core.errors", "leaf"}),
    "plan": frozenset({"core.model", "core.errors", "policy", "backends.base", "leaf"}),
    "engine": frozenset(
        {
            "core",
            "policy",
            "plan",
            "backends.base",
            "backends.registry",
            "leaf",
        }
    ),
    "backends.base": frozenset({"core", "leaf"}),
    "backends.registry": frozenset({"core", "backends.base", "leaf"}),
    "backends.impl": frozenset({"core", "backends.base", "leaf"}),
    "cli": frozenset(
        {
            "core",
            "leaf",
            "policy",
            "plan",
            "engine",
            "backends.base",
            "backends.registry",
            "backends.impl",
            "api",
        }
    ),
    "api": frozenset(
        {
            "core",
            "leaf",
            "policy",
            "plan",
            "engine",
            "backends.base",
            "backends.registry",
            "backends.impl",
            "cli",
        }
    ),
    "testing": frozenset(
        {
            "core",
            "leaf",
            "policy",
            "plan",
            "engine",
            "backends.base",
            "backends.registry",
            "backends.impl",
            "cli",
            "api",
        }
    ),
}


def layer_of(module: str) -> str:
    """The layer a module of ours belongs to (``core.model``, ``policy``, ``backends.impl`` ...)."""
    parts = module.split(".")
    assert parts[0] == "vmfailover", module
    if len(parts) == 1:
        return "api"
    head = parts[1]
    if head in ("model", "errors", "clock"):
        return f"core.{head}"
    if head == "__main__":
        return "cli"
    if head in ("policy", "plan", "engine", "cli", "testing"):
        return head
    if head == "backends":
        if len(parts) == 2:
            return "backends.registry"
        if parts[2] == "base":
            return "backends.base"
        return f"backends.impl.{parts[2]}"
    if head.startswith("_"):
        return "leaf"
    raise AssertionError(f"{module}: not in any layer of DESIGN.md; place it in one")


def may_import(importer: str, imported: str) -> bool:
    """Whether a module of layer ``importer`` may import one of layer ``imported``."""
    if importer == imported:
        return True
    # A backend implementation is its own room: it may not use another implementation.
    if importer.startswith("backends.impl.") and imported.startswith("backends.impl."):
        return False
    if _group(importer) == _group(imported) == "core":
        return True  # model, errors and clock use each other
    allowed = ALLOWED[_group(importer)]
    return imported in allowed or _group(imported) in allowed


def _group(layer: str) -> str:
    if layer.startswith("core."):
        return "core"
    if layer.startswith("backends.impl."):
        return "backends.impl"
    return layer


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of ``vmfailover`` in ``source``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vmfailover":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "vmfailover":
                continue
            for alias in node.names:
                # ``from vmfailover.x import y`` names module ``x.y`` when y is a submodule.
                candidate = f"{target}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else target


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    importer = layer_of(module)
    found = []
    for line, imported in imports_of(source, module, is_package):
        target = layer_of(imported)
        if not may_import(importer, target):
            found.append(f"{module}:{line} ({importer}) imports {imported} ({target})")
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    for path in _modules():
        layer_of(module_name(path))


def test_no_import_crosses_the_layers_the_wrong_way() -> None:
    found: list[str] = []
    for path in _modules():
        found += violations(
            path.read_text(), module_name(path), is_package=path.name == "__init__.py"
        )
    assert not found, "imports DESIGN.md forbids:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("vmfailover.policy.synthetic", "from vmfailover.engine.runner import Runner\n"),
        ("vmfailover.policy.synthetic", "def f():\n    import vmfailover.engine.simulate\n"),
        ("vmfailover.policy.synthetic", "from vmfailover.clock import SystemClock\n"),
        ("vmfailover.policy.synthetic", "from ..engine import runner\n"),
        ("vmfailover.engine.synthetic", "from vmfailover.cli import main\n"),
        ("vmfailover.engine.synthetic", "from vmfailover.backends.memory import MemoryBackend\n"),
        ("vmfailover.engine.synthetic", "from vmfailover import Runner\n"),
        ("vmfailover.backends.memory.synthetic", "from vmfailover.engine import runner\n"),
        ("vmfailover.backends.memory.synthetic", "from vmfailover.policy import retention\n"),
        ("vmfailover.cli.synthetic", "from vmfailover.testing import lab\n"),
        ("vmfailover.model", "from vmfailover.policy.sequencer import StartOrder\n"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, source: str) -> None:
    assert violations(source, module), f"{source!r} in {module} should be refused"


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("vmfailover.policy.synthetic", "from vmfailover.model import VM\n"),
        ("vmfailover.policy.synthetic", "from . import sequencer\n"),
        ("vmfailover.engine.synthetic", "from vmfailover.backends import open_backend\n"),
        ("vmfailover.engine.synthetic", "from vmfailover.policy.sequencer import Sequencer\n"),
        ("vmfailover.backends.memory.synthetic", "from vmfailover.clock import VirtualClock\n"),
        ("vmfailover.cli.synthetic", "from vmfailover.backends.memory.lab import lab\n"),
        ("vmfailover.testing.synthetic", "from vmfailover.cli import main\n"),
    ],
)
def test_an_allowed_import_passes(module: str, source: str) -> None:
    assert violations(source, module) == []
