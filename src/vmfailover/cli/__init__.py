"""The command line: ``vmfailover`` (or ``python -m vmfailover``).

Exit codes: 0 success, 2 usage error, 3 the input was refused (validation), 4 a run ended
partial, 5 a run failed, 6 a run was cancelled, 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from vmfailover import __version__
from vmfailover.cli.demo import run_demo
from vmfailover.engine.results import RunResult
from vmfailover.errors import ValidationError

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    RunResult.SUCCEEDED: 0,
    RunResult.PARTIAL: 4,
    RunResult.FAILED: 5,
    RunResult.CANCELLED: 6,
}
EXIT_INVALID = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmfailover", description="Protect virtual machines and fail them over."
    )
    parser.add_argument("--version", action="version", version=f"vmfailover {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="the built-in lab: a test failover with cleanup, a planned failover, and after "
        "losing site A a regular failover, with their reports",
        description="Runs on the in-memory two-site lab: nothing outside this process is touched.",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=None,
        help="let lab time flow at this many seconds per real second (1 to 10000); by default "
        "the lab runs in virtual time that jumps ahead whenever every worker waits",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the lab's workload")
    demo.add_argument("--json", action="store_true", help="print the report as JSON only")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            reports = run_demo(stream, speed=args.speed, seed=args.seed, as_json=args.json)
            return max(EXIT_CODES[report.result] for report in reports)
    except ValidationError as error:
        print(f"vmfailover: {error}", file=sys.stderr)
        return EXIT_INVALID
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover
