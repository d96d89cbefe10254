"""Where the command line writes: rich on a terminal, plain text everywhere else.

On a terminal with the ``cli`` extra installed (rich), tables are drawn as tables, outcomes are
coloured (ready green, failed red, timed out yellow), runs show a live progress bar and long work
a spinner. Piped, redirected, or without rich, the same content comes out as plain fixed-width
text with no escape codes, one line per event, so scripts and logs read it as they read files.
rich itself honours ``NO_COLOR`` and ``TERM=dumb`` on a terminal.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TextIO

from vmfailover._render import in_words, text_table
from vmfailover.engine.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    RunWarning,
    VMFailed,
    VMReady,
)

__all__ = ["Output", "PlainProgress", "rich_module"]

#: How a cell's text is coloured on a terminal, by what it says.
_STYLES = {
    "ready": "green",
    "succeeded": "green",
    "met": "green",
    "keep": "green",
    "failed": "bold red",
    "error": "bold red",
    "MISSED": "bold red",
    "timed out": "yellow",
    "partial": "yellow",
    "warning": "yellow",
    "skipped": "dim",
    "cancelled": "dim",
    "refused": "red",
    "compliant": "green",
    "exceeded": "yellow",
    "severe": "bold red",
    "critical": "bold red",
    "unprotected": "bold red",
}


def rich_module() -> ModuleType | None:
    """rich if the ``cli`` extra is installed, else None (the command line then writes plain
    text; nothing else changes)."""
    try:
        import rich
    except ImportError:
        return None
    return rich


class Output:
    """Writes a command's results to ``stream``: with rich when ``stream`` is a terminal and
    rich is installed, as plain text otherwise (``plain=True`` forces plain text)."""

    def __init__(self, stream: TextIO, *, plain: bool = False) -> None:
        self.stream = stream
        self._console: Any = None
        if not plain and _is_terminal(stream) and rich_module() is not None:
            from rich.console import Console

            self._console = Console(file=stream, highlight=False)

    @property
    def rich(self) -> bool:
        """Whether this output draws with rich (a terminal and the ``cli`` extra)."""
        return self._console is not None

    def say(self, text: str = "", style: str | None = None) -> None:
        """One line (or several), coloured by ``style`` on a terminal."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = ""
    ) -> None:
        """A table; on a terminal each cell that names an outcome is coloured."""
        if self._console is None:
            self.say(text_table(headers, rows, title=title))
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title or None, title_justify="left", header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(Text(str(cell), style=_STYLES.get(str(cell), "")) for cell in row))
        self._console.print(table)

    @contextlib.contextmanager
    def working(self, text: str) -> Iterator[None]:
        """A spinner with ``text`` on a terminal while the block runs; a line elsewhere."""
        if self._console is None:
            self.say(text)
            yield
            return
        with self._console.status(text):
            yield

    def run_progress(self) -> Callable[[RunEvent], None]:
        """An event subscriber drawing a run's progress: a live bar on a terminal, one line per
        VM elsewhere. Subscribe it with ``runner.subscribe``."""
        if self._console is None:
            return PlainProgress(self.stream)
        return _RichProgress(self._console)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        return False


class PlainProgress:
    """A run's progress as text: one line per VM with a bar of ``#``; a redrawn line when the
    stream is a terminal (the fallback without rich)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = _is_terminal(out)
        self._total = 0
        self._done = 0
        self._lock = threading.Lock()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self._total = len(event.vms)
                self._done = 0
                self._line(f"failing over {self._total} VMs ({event.run_id})")
            elif isinstance(event, VMReady):
                self._done += 1
                self._line(f"{event.vm} ready", progress=True)
            elif isinstance(event, VMFailed):
                self._done += 1
                self._line(f"{event.vm} {in_words(event.state)}: {event.reason}", progress=True)
            elif isinstance(event, RunWarning):
                self._line(f"warning: {event.message}")

    def _line(self, text: str, progress: bool = False) -> None:
        if progress and self._total:
            width = 24
            filled = width * self._done // self._total
            bar = "#" * filled + "." * (width - filled)
            text = f"[{bar}] {self._done:>3}/{self._total}  {text}"
        if self._tty and progress:
            end = "\n" if self._done == self._total else ""
            self._out.write(f"\r\x1b[2K{text}{end}")
        else:
            self._out.write(text + "\n")
        self._out.flush()


class _RichProgress:
    """A run's progress as rich's live bar: VMs done of all, the last VM that finished, time."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}", markup=False),  # VM names are not markup
            console=console,
            transient=False,
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self._progress.start()
                self._task = self._progress.add_task(
                    f"{event.kind.value} failover", total=len(event.vms), last=""
                )
            elif self._task is None:
                return
            elif isinstance(event, VMReady):
                self._progress.update(self._task, advance=1, last=f"{event.vm} ready")
            elif isinstance(event, VMFailed):
                words = in_words(event.state)
                self._progress.update(self._task, advance=1, last=f"{event.vm} {words}")
                self._print((f"{event.vm} {words}: ", "red"), event.reason)
            elif isinstance(event, RunWarning):
                self._print(("warning: ", "yellow"), event.message)
            elif isinstance(event, RunFinished):
                self._progress.stop()
                self._task = None

    def _print(self, *parts: str | tuple[str, str]) -> None:
        from rich.text import Text

        self._progress.console.print(Text.assemble(*parts))
