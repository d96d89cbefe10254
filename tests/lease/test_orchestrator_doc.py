"""docs/orchestrator.md does what it says: its Python runs and prints what the page claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "orchestrator.md"


def test_the_orchestrator_page_python_runs(
    capsys: pytest.CaptureFixture[str], postgres_dsn: str
) -> None:
    """Its blocks run; the one for a PostgreSQL database gets ``dsn`` (a schema of our own)."""
    blocks = re.findall(r"```python\n(.*?)\n```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 3
    for code in blocks:
        exec(compile(code, str(PAGE), "exec"), {"dsn": postgres_dsn} if "dsn" in code else {})
    out = capsys.readouterr().out
    assert "run under token three-tier#1: succeeded" in out
    assert "refused: it was released by its holder" in out
    assert "site-a refused: held by 'site-b" in out
    assert re.search(r"site-b ran run-\S+: succeeded", out)
    assert "lease released: True" in out
    assert re.search(r"site-b ran run-\S+, every write fenced: succeeded", out)
