"""The command line: ``vmfailover`` (or ``python -m vmfailover``).

``validate PLAN`` and ``simulate PLAN`` check a plan file and predict its RTO (``--lab``: against
the built-in two-site lab); ``run PLAN --kind KIND`` fails it over (on the lab kept in a file, or a
backend your function returns) with the run journal written as it goes; ``cleanup RUN`` removes a
test run's copies in a later process; ``commit RUN``, ``undo RUN`` and ``failback RUN`` decide what
follows a planned or regular run (:mod:`vmfailover.cli.aftercare`); ``deadlines`` commits or
undoes every run whose plan deadline is due (:mod:`vmfailover.cli.deadlines`); ``report [RUN]``
shows the run journal's history or one run; ``resume RUN`` continues an interrupted run;
``drill PLAN`` runs one recovery drill now (a test failover and its proven cleanup, for cron to
schedule); ``serve`` runs an orchestrator that takes over interrupted runs under their plans'
leases (and keeps their deadlines); ``lab reset`` starts the lab over; ``demo`` plays the whole
story on the lab. On a terminal with the ``cli`` extra (rich) the output has tables, colour and
progress bars; piped, or without rich, it is plain text. ``--json`` prints one JSON document for
machines.

Exit codes: 0 success, 2 usage error (unknown option, missing file, missing extra), 3 the input
was refused (validation failed, or a simulated RTO misses the plan's target), 4 a run ended
partial (or a cleanup, commit, undo or failback could not finish: run it again), 5 a run failed,
6 a run was cancelled, 141 the reader of the output went away (``| head``), 1 anything
unexpected. A run that cannot be resumed (it is not interrupted), cleaned up (it is no test, or
is interrupted), committed, undone or failed back (its state rules it out: the message names the
run and what to do instead), a lab file another command holds, and a PostgreSQL journal that does
not answer are refused with 3; an unknown run id or a missing journal exits 2.

Every command that takes ``--journal`` (else ``$VMFAILOVER_JOURNAL``) takes an SQLite file or a
``postgresql://`` connection string (:mod:`vmfailover.cli.journal`); only ``run`` and ``serve``
make a journal, the others read an existing one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from vmfailover import __version__
from vmfailover.cli.aftercare import (
    EXIT_UNFINISHED,
    commit_command,
    failback_command,
    undo_command,
)
from vmfailover.cli.backends import DEFAULT_LAB, LAB_BACKEND, reset_lab
from vmfailover.cli.commands import EXIT_INVALID, simulate_command, validate_command
from vmfailover.cli.deadlines import deadlines_command
from vmfailover.cli.demo import run_demo
from vmfailover.cli.drills import drill_command
from vmfailover.cli.journal import DEFAULT_JOURNAL, report_command, resume_command
from vmfailover.cli.output import Output
from vmfailover.cli.runs import cleanup_command, run_command
from vmfailover.cli.serve import serve_command
from vmfailover.engine.journal import JournalUnavailableError
from vmfailover.engine.results import RunResult
from vmfailover.errors import (
    BackendError,
    ConflictError,
    Finding,
    MissingExtraError,
    NotFoundError,
    ValidationError,
)

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_CODES", "EXIT_INVALID", "EXIT_USAGE", "main"]

EXIT_CODES = {
    RunResult.SUCCEEDED: 0,
    RunResult.PARTIAL: 4,
    RunResult.FAILED: 5,
    RunResult.CANCELLED: 6,
}
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13
"""The reader of the output went away (128 + SIGPIPE, as a shell reports a tool it stopped)."""

_KINDS = ("test", "planned", "regular")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _runs(text: str) -> int:
    value = _positive_int(text)
    if value > 1_000_000:
        raise argparse.ArgumentTypeError(f"at most 1000000 runs, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmfailover",
        description="Protect virtual machines and fail them over.",
        epilog="Exit codes: 0 success, 2 usage error (or an unknown run id), 3 refused "
        "(validation, or a run whose state rules the command out), 4 partial run (or a cleanup, "
        "commit, undo or failback that could not finish: run it again), 5 failed run, "
        "6 cancelled run.",
    )
    parser.add_argument("--version", action="version", version=f"vmfailover {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a plan file (TOML or YAML); with --lab also against the built-in lab",
        description="Reads the plan file and reports every problem with its line or key. With "
        "--lab, also runs the read-only pre-flight of a failover of --kind on the built-in "
        "two-site lab. Nothing is changed. Exit 0: valid; 3: refused.",
    )
    validate.add_argument("plan", type=Path, metavar="PLAN", help="the plan file")
    validate.add_argument(
        "--lab", action="store_true", help="check against the built-in two-site lab"
    )
    validate.add_argument(
        "--kind",
        choices=_KINDS,
        default="test",
        help="the failover kind to check for with --lab (default: test)",
    )
    validate.add_argument(
        "--backend",
        metavar="FILE|MODULE:FACTORY",
        help="check against this backend instead (a backend file or a function that returns "
        "it): the read-only pre-flight of a failover of --kind; nothing is changed",
    )
    validate.add_argument(
        "--site-lost",
        metavar="SITE",
        help="with --lab: lose this lab site first (site-a), as before a regular failover",
    )
    validate.add_argument("--json", action="store_true", help="print the findings as JSON")

    simulate = commands.add_parser(
        "simulate",
        help="predict a plan's RTO in virtual time (Monte Carlo with --runs)",
        description="Runs the plan's start order through the runner's own sequencer in virtual "
        "time. Each VM's start-to-ready time comes from --duration, --default-duration, or with "
        "--lab the lab's boot times; with --runs N > 1 each is drawn from a log-normal around "
        "it (--spread) and the result gives p50, p90 and p99. Exit 0: the prediction (p90 with "
        "--runs) meets the plan's RTO target or there is none; 3: it misses, or the input was "
        "refused.",
    )
    simulate.add_argument("plan", type=Path, metavar="PLAN", help="the plan file")
    simulate.add_argument(
        "--runs", type=_runs, default=1, help="Monte Carlo runs (default 1: one run)"
    )
    simulate.add_argument(
        "--lab", action="store_true", help="the plan's VMs boot as long as the lab's do"
    )
    simulate.add_argument(
        "--duration",
        action="append",
        default=[],
        metavar="VM=DURATION",
        help="a VM's start-to-ready time: seconds or a span such as 2m (repeatable)",
    )
    simulate.add_argument(
        "--default-duration",
        metavar="DURATION",
        help="start-to-ready time of every VM without one",
    )
    simulate.add_argument(
        "--spread",
        type=float,
        default=0.3,
        help="with --runs > 1: sigma of the log-normal around each duration (default 0.3)",
    )
    simulate.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    simulate.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="how many VMs the runner starts at once (its max_parallel)",
    )
    simulate.add_argument("--json", action="store_true", help="print the prediction as JSON")

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

    journal_help = (
        f"the run journal: an SQLite file, or postgresql://... (default: $VMFAILOVER_JOURNAL, "
        f"else ./{DEFAULT_JOURNAL})"
    )
    report = commands.add_parser(
        "report",
        help="the run journal: every run (kind, plan, result, RTO), or one run in full",
        description="Without RUN: every journaled run with its kind, plan, start, state, result "
        "and RTO against the target. With RUN: its state changes, how many changing calls it "
        "made and its last report. Reads only.",
    )
    report.add_argument("run", nargs="?", metavar="RUN", help="a run id (default: all runs)")
    report.add_argument("--journal", metavar="STORE", help=journal_help)
    report.add_argument("--json", action="store_true", help="print JSON")

    resume = commands.add_parser(
        "resume",
        help="continue an interrupted run from the journal",
        description="Continues a run whose process died: VMs that finished are not touched "
        "again, calls the journal holds are replayed or reconciled with the backend first, the "
        "rest start in order. The journal holds no credentials: --backend names a backend file "
        "(FILE.toml or FILE.yaml, passwords from the environment or a file of their own) or a "
        "function of yours (MODULE:FACTORY) that connects and returns the backend. Exit codes "
        "as for a run; "
        "3 if the run is not interrupted.",
    )
    resume.add_argument("run", metavar="RUN", help="the run id (see vmfailover report)")
    resume.add_argument(
        "--backend",
        required=True,
        metavar="lab|FILE|MODULE:FACTORY",
        help="the backend the run ran on: lab (the lab kept in --lab FILE), a backend file "
        "(dr.toml, dr.yaml) or a function that returns it, e.g. mysite.dr:backend",
    )
    resume.add_argument("--lab", type=Path, metavar="FILE", help="with --backend lab: its file")
    resume.add_argument(
        "--plan",
        type=Path,
        metavar="PLAN",
        help="the plan file again (needed only when the plan had Python callables)",
    )
    resume.add_argument("--journal", metavar="STORE", help=journal_help)
    resume.add_argument("--json", action="store_true", help="print the report as JSON only")
    _serve_parser(commands)

    lab_help = f"the lab's file (default: $VMFAILOVER_LAB, else ./{DEFAULT_LAB})"
    backend_help = (
        "lab (default: the two-site lab kept in --lab FILE, created on first use), a backend "
        "file (FILE.toml or FILE.yaml: vSphere vCenters or Hyper-V hosts, see docs/cli.md) or "
        "MODULE:FACTORY, a function of yours that connects and returns a backend"
    )
    run = commands.add_parser(
        "run",
        help="fail a plan over: --kind test (isolated copies), planned or regular",
        description="Runs the plan's failover of --kind on the backend, the pre-flight check "
        "first, with the run journal written as it goes; shows the report and the run id "
        "(`vmfailover report RUN` reads it later). A test failover leaves its copies running "
        "until `vmfailover cleanup RUN`. Exit 0: succeeded; 3: refused by the pre-flight "
        "check; 4: partial; 5: failed; 6: cancelled.",
    )
    run.add_argument("plan", type=Path, metavar="PLAN", help="the plan file")
    run.add_argument("--kind", choices=_KINDS, required=True, help="the failover kind")
    run.add_argument(
        "--backend", default=LAB_BACKEND, metavar="lab|FILE|MODULE:FACTORY", help=backend_help
    )
    run.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
    run.add_argument("--journal", metavar="STORE", help=journal_help)
    run.add_argument(
        "--workers", type=_positive_int, default=8, help="VMs recovered at once (default 8)"
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON only")

    cleanup = commands.add_parser(
        "cleanup",
        help="remove a test run's copies and prove the inventory is as before the test",
        description="Removes the test copies the journal says the run created, on the backend "
        "it ran on (--backend and --lab as for run), compares the inventory with the one "
        "journaled before the test, and journals the cleanup. Exit 0: restored; 4: something "
        "differs or could not be removed (shown; run it again); 3: not an ended test run.",
    )
    cleanup.add_argument("run", metavar="RUN", help="the run id `vmfailover run` printed")
    cleanup.add_argument(
        "--backend", default=LAB_BACKEND, metavar="lab|FILE|MODULE:FACTORY", help=backend_help
    )
    cleanup.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
    cleanup.add_argument("--journal", metavar="STORE", help=journal_help)
    cleanup.add_argument(
        "--plan",
        type=Path,
        metavar="PLAN",
        help="the plan file again (needed only when the plan had Python callables)",
    )
    cleanup.add_argument("--json", action="store_true", help="print the cleanup as JSON")
    _aftercare_parsers(commands, backend_help, lab_help, journal_help)
    deadlines = commands.add_parser(
        "deadlines",
        help="commit or undo every run whose plan deadline (auto_commit, auto_undo) is due",
        description="Plans with auto_commit or auto_undo journal their deadline when a run's "
        "recovery ends; `vmfailover serve` keeps them while it runs. Without a server, run this "
        "from cron: it commits or undoes each run whose deadline is due now (by the backend's "
        "clock), as commit or undo would, and leaves alone a run decided meanwhile or acted on "
        "by another process. Exit 0: nothing left unfinished; 4: a commit or undo could not "
        "finish (shown: run commit or undo RUN).",
    )
    deadlines.add_argument(
        "--backend", default=LAB_BACKEND, metavar="lab|FILE|MODULE:FACTORY", help=backend_help
    )
    deadlines.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
    deadlines.add_argument("--journal", metavar="STORE", help=journal_help)
    deadlines.add_argument("--json", action="store_true", help="print what was done as JSON")
    _drill_parser(commands, backend_help, lab_help, journal_help)

    lab_command = commands.add_parser(
        "lab",
        help="the lab kept in a file for run and cleanup: reset starts it over",
        description="The in-memory two-site lab that `--backend lab` works on lives in a file "
        "between commands. `lab reset` replaces it with a fresh lab.",
    )
    lab_command.add_argument("action", choices=("reset",), help="reset: start the lab over")
    lab_command.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
    return parser


def _aftercare_parsers(
    commands: argparse._SubParsersAction[Any], backend_help: str, lab_help: str, journal_help: str
) -> None:
    """``commit``, ``undo`` and ``failback``: after a planned or regular run."""
    commit = commands.add_parser(
        "commit",
        help="make a planned or regular failover permanent (it can no longer be undone)",
        description="Commits every replica the run failed over, on the backend it ran on "
        "(--backend and --lab as for run), and journals it: the failover can no longer be "
        "undone, and `vmfailover failback RUN` brings it home later. Committing a failback run "
        "also resumes replication in its first direction. Exit 0: committed; 4: something "
        "could not be committed (shown; run it again); 3: refused (a test run, a run still "
        "running or interrupted, one undone or committed already); 2: no such run.",
    )
    undo = commands.add_parser(
        "undo",
        help="roll back a planned or regular failover that is not committed",
        description="Reverts what the run touched, on the backend it ran on: its replicas "
        "replicate again with the disks they had, their NICs and addresses as before, the "
        "sources it stopped start again in start order; then proves every VM and replica it "
        "touched is as the journal recorded them before the run, and journals the undo. "
        "Undoing a failback run gives production back to the recovery site. Exit 0: restored; "
        "4: something differs (shown; run it again); 3: refused (a test run, a run still "
        "running or interrupted, a committed one); 2: no such run.",
    )
    failback = commands.add_parser(
        "failback",
        help="bring a committed failover home: only the changed data moves",
        description="Reverses replication (the recovered VMs replicate to the original ones, "
        "moving only the blocks that differ), then runs a planned failover back: the recovered "
        "VMs shut down, a final sync, the originals started in the plan's order on their own "
        "networks and addresses. The failback is a run of its own (its id is printed), which "
        "you then commit (replication resumes in its first direction) or undo (production goes "
        "back to the recovery site). Exit codes as for run (0, 4, 5, 6); 3: refused (a test "
        "run, a run not committed yet, one failed back already); 2: no such run.",
    )
    for command in (commit, undo, failback):
        command.add_argument("run", metavar="RUN", help="the run id `vmfailover run` printed")
        command.add_argument(
            "--backend", default=LAB_BACKEND, metavar="lab|FILE|MODULE:FACTORY", help=backend_help
        )
        command.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
        command.add_argument("--journal", metavar="STORE", help=journal_help)
    for command in (commit, undo):
        command.add_argument(
            "--plan",
            type=Path,
            metavar="PLAN",
            help="the run's plan file again (needed only when the plan had Python callables)",
        )
        command.add_argument("--json", action="store_true", help="print the run's report as JSON")
    failback.add_argument(
        "--plan",
        type=Path,
        metavar="PLAN",
        help="the plan for the way back (default: the run's plan turned around)",
    )
    failback.add_argument(
        "--workers", type=_positive_int, default=8, help="VMs brought home at once (default 8)"
    )
    failback.add_argument(
        "--json", action="store_true", help="print the failback run's report as JSON only"
    )


def _serve_parser(commands: argparse._SubParsersAction[Any]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run an orchestrator: runs plans under their leases, takes over interrupted runs",
        description="Serves until SIGTERM or SIGINT: every --poll seconds it takes over the "
        "interrupted runs of the journal whose plan's lease is free or expired (a new fencing "
        "token) and resumes them. Every backend call and journal write of a run is fenced by "
        "its lease. On SIGTERM its runs are handed over and it exits 0.",
    )
    serve.add_argument(
        "--journal",
        metavar="STORE",
        help=f"the run journal the orchestrators share: an SQLite file, or postgresql://... "
        f"(default: $VMFAILOVER_JOURNAL, else ./{DEFAULT_JOURNAL})",
    )
    serve.add_argument(
        "--lease",
        metavar="STORE",
        help="the lease store the orchestrators share: an SQLite file, or postgresql://... "
        "(default with a PostgreSQL journal: the journal's database; needed otherwise)",
    )
    serve.add_argument(
        "--backend",
        required=True,
        metavar="FILE|MODULE:FACTORY",
        help="a backend file (dr.toml, dr.yaml) or a function that returns the backend, "
        "e.g. mysite.dr:backend",
    )
    serve.add_argument("--name", required=True, help="this orchestrator's name, e.g. site-b")
    serve.add_argument(
        "--lease-seconds", type=float, default=15.0, help="each lease's length (default 15)"
    )
    serve.add_argument("--poll", type=float, default=5.0, help="seconds between passes (default 5)")
    serve.add_argument("--submit", type=Path, metavar="PLAN", help="start this plan at once")
    serve.add_argument("--kind", choices=_KINDS, default="regular", help="the kind to --submit")


def _drill_parser(commands: Any, backend_help: str, lab_help: str, journal_help: str) -> None:
    drill = commands.add_parser(
        "drill",
        help="one recovery drill now: a test failover, its cleanup proven, for cron to schedule",
        description="Runs the plan as a test failover (journaled), removes its copies and proves "
        "the inventory as before, then prints the drill's result. Skipped, with the reason, when "
        "a production run of the plan or of its VMs is in progress or not yet committed or "
        "undone, a test run of them is still running, or an earlier test's cleanup was never "
        "proven. Exit 0: passed; 1: failed; 3: skipped or refused.",
    )
    drill.add_argument("plan", type=Path, metavar="PLAN", help="the plan file")
    drill.add_argument(
        "--backend", default=LAB_BACKEND, metavar="lab|FILE|MODULE:FACTORY", help=backend_help
    )
    drill.add_argument("--lab", type=Path, metavar="FILE", help=lab_help)
    drill.add_argument("--journal", metavar="STORE", help=journal_help)
    drill.add_argument(
        "--max-duration",
        metavar="SPAN",
        help="cancel, clean up and fail the drill when run and cleanup take longer (e.g. 30m)",
    )
    drill.add_argument(
        "--workers", type=_positive_int, default=8, help="VMs recovered at once (default 8)"
    )
    drill.add_argument("--json", action="store_true", help="print the result as JSON only")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code. ``out`` replaces standard output.

    When whoever reads the output stops reading (``vmfailover report | head -1``), the command
    ends quietly with 141 (128 + SIGPIPE, what a shell reports for a tool the closed pipe
    stopped), as Unix tools do, instead of a BrokenPipeError traceback.
    """
    stream = out or sys.stdout
    try:
        try:
            code = _command(argv, stream)
        except SystemExit:  # --help, --version and usage errors: argparse wrote to sys.stdout
            sys.stdout.flush()
            raise
        stream.flush()  # what is still buffered meets a closed pipe here, not at exit
    except BrokenPipeError:
        _silence(stream)
        _silence(sys.stdout)
        return EXIT_BROKEN_PIPE
    return code


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file at /dev/null, so that Python's own flush at exit does not fail
    on the closed pipe again (the Python docs' recipe for SIGPIPE)."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO and the like: nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


def _command(argv: Sequence[str] | None, stream: TextIO) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "validate" and args.site_lost is not None and not args.lab:
        parser.error("--site-lost needs --lab")
    if args.command == "validate" and args.lab and args.backend is not None:
        parser.error("give --lab or --backend, not both")
    output = Output(stream, plain=getattr(args, "json", False))
    errors = Output(sys.stderr)
    try:
        if args.command == "validate":
            return validate_command(
                output,
                args.plan,
                kind=args.kind,
                use_lab=args.lab,
                site_lost=args.site_lost,
                backend=args.backend,
                as_json=args.json,
            )
        if args.command == "simulate":
            return simulate_command(
                output,
                args.plan,
                runs=args.runs,
                use_lab=args.lab,
                durations=args.duration,
                default_duration=args.default_duration,
                spread=args.spread,
                seed=args.seed,
                workers=args.workers,
                as_json=args.json,
            )
        if args.command == "demo":
            reports = run_demo(stream, speed=args.speed, seed=args.seed, as_json=args.json)
            return max(EXIT_CODES[report.result] for report in reports)
        if args.command == "run":
            result = run_command(
                output,
                args.plan,
                kind=args.kind,
                backend=args.backend,
                lab_file=args.lab,
                journal=args.journal,
                max_parallel=args.workers,
                as_json=args.json,
            )
            return EXIT_CODES[result]
        if args.command == "cleanup":
            return cleanup_command(
                output,
                args.run,
                backend=args.backend,
                lab_file=args.lab,
                journal=args.journal,
                plan_path=args.plan,
                as_json=args.json,
            )
        if args.command == "drill":
            return drill_command(
                output,
                args.plan,
                backend=args.backend,
                lab_file=args.lab,
                journal=args.journal,
                max_duration=args.max_duration,
                max_parallel=args.workers,
                as_json=args.json,
            )
        if args.command in ("commit", "undo", "failback"):
            return _aftercare(args, output, errors)
        if args.command == "deadlines":
            return deadlines_command(
                output,
                backend=args.backend,
                lab_file=args.lab,
                journal=args.journal,
                as_json=args.json,
            )
        if args.command == "lab":
            path = reset_lab(args.lab)
            output.say(f"{path}: a fresh two-site lab")
            return 0
        if args.command == "report":
            return report_command(output, args.run, args.journal, as_json=args.json)
        if args.command == "resume":
            result = resume_command(
                output,
                args.run,
                args.journal,
                backend_spec=args.backend,
                lab_file=args.lab,
                plan_path=args.plan,
                as_json=args.json,
            )
            return EXIT_CODES[result]
        if args.command == "serve":
            return serve_command(
                output,
                journal=args.journal,
                lease=args.lease,
                backend_spec=args.backend,
                name=args.name,
                lease_seconds=args.lease_seconds,
                poll=args.poll,
                submit=args.submit,
                kind=args.kind,
            )
    except ConflictError as error:
        errors.say(f"vmfailover: {error}", style="bold red")
        return EXIT_INVALID
    except JournalUnavailableError as error:
        # The database went away after the command had reached it: whatever acted is in the
        # journal (its intent was written first), so the command is unfinished, not lost.
        errors.say(
            f"vmfailover: {error}; what was done is in the journal: once it answers, "
            "`vmfailover report` shows where each run stands and `vmfailover resume RUN` "
            "finishes an interrupted one",
            style="bold red",
        )
        return EXIT_UNFINISHED
    except ValidationError as error:
        plan = getattr(args, "plan", None)
        backend = getattr(args, "backend", None)
        about_plan = plan is not None and not all(
            _names_a_store(f) or _names_the_backend(f, backend) for f in error.findings
        )
        _refused(errors, error, f"{plan}: " if about_plan else "")
        return EXIT_INVALID
    except (NotFoundError, MissingExtraError) as error:
        errors.say(f"vmfailover: {error}", style="bold red")
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def _aftercare(args: argparse.Namespace, output: Output, errors: Output) -> int:
    """``commit``, ``undo`` or ``failback`` RUN; a backend that fails on the way leaves the run
    committing, undoing or failing back, which the same command finishes: exit 4."""
    where = {"backend": args.backend, "lab_file": args.lab, "journal": args.journal}
    try:
        if args.command == "failback":
            result = failback_command(
                output,
                args.run,
                **where,
                plan_path=args.plan,
                max_parallel=args.workers,
                as_json=args.json,
            )
            return EXIT_CODES[result]
        command = commit_command if args.command == "commit" else undo_command
        return command(output, args.run, **where, plan_path=args.plan, as_json=args.json)
    except BackendError as error:
        errors.say(
            f"vmfailover: run {args.run}: the {args.command} could not finish: {error}; run "
            f"`vmfailover {args.command} {args.run}` again once the backend answers",
            style="bold red",
        )
        return EXIT_UNFINISHED


def _names_a_store(finding: Finding) -> bool:
    """Whether a finding is about the journal or lease store (not the plan file)."""
    return finding.item.startswith(("--journal", "--lease", "journal "))


def _names_the_backend(finding: Finding, backend: str | None) -> bool:
    """Whether a finding is about --backend or the backend file (not the plan file)."""
    return finding.item.startswith("--backend") or (
        backend is not None and finding.item.startswith(backend)
    )


def _refused(errors: Output, error: ValidationError, where: str) -> None:
    """Every finding on a line of its own, so each names its place in the file."""
    findings = error.findings
    if len(findings) == 1:
        errors.say(f"vmfailover: {where}{findings[0]}", style="bold red")
        return
    errors.say(f"vmfailover: {where}refused, {len(findings)} problems:", style="bold red")
    for finding in findings:
        errors.say(f"  {finding}")
