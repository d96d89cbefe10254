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
        help="replicate the built-in lab, lose site A, fail over to site B, print the report",
        description="Runs on the in-memory two-site lab: nothing outside this process is touched.",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=120.0,
        help="how many lab seconds pass per real second (default 120: a 60 s boot takes 0.5 s)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the lab's workload")
    demo.add_argument("--json", action="store_true", help="print the report as JSON only")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.speed <= 0:
                raise ValidationError.of("--speed", f"must be > 0, got {args.speed}")
            report = run_demo(stream, speed=args.speed, seed=args.seed, as_json=args.json)
            return EXIT_CODES[report.result]
    except ValidationError as error:
        print(f"vmfailover: {error}", file=sys.stderr)
        return EXIT_INVALID
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover
