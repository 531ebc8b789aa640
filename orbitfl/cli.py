"""The ``orbitfl`` command: ``validate`` and ``run`` a scenario file."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from orbitfl.errors import InputError

EXIT_INPUT_ERROR = 2


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as cleanly as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(prog="orbitfl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p_validate = commands.add_parser("validate", help="check a scenario file; exit 0 or 2")
    p_validate.add_argument("scenario", type=Path)
    p_run = commands.add_parser("run", help="validate, then simulate a scenario")
    p_run.add_argument("scenario", type=Path)
    p_run.add_argument("--out", type=Path, default=None,
                       help="run directory to create (default: runs/<name>-<UTC time>)")
    p_run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue the run into RUN_DIR that stopped early")
    p_contacts = commands.add_parser("contacts", help="write a scenario's contact plan")
    p_contacts.add_argument("scenario", type=Path)
    p_contacts.add_argument("--out", type=Path, required=True, help="table: .csv or .parquet")
    p_contacts.add_argument("--gantt", type=Path, help="also draw a contact Gantt chart (PNG)")
    p_contacts.add_argument("--ground-track", type=Path, help="also draw ground tracks (PNG)")
    p_report = commands.add_parser("report", help="figures and a dashboard from run directories")
    p_report.add_argument("runs", type=Path, nargs="+")
    p_report.add_argument("--out", type=Path, required=True)
    p_sweep = commands.add_parser("sweep", help="run a scenario over a grid of values")
    p_sweep.add_argument("sweep", type=Path)
    p_sweep.add_argument("--out", type=Path, default=None,
                         help="sweep directory (default: runs/sweeps/<sweep file name>)")
    p_sweep.add_argument("--backend", choices=("local", "ray"), default="local")
    p_sweep.add_argument("--workers", type=int, default=None,
                         help="parallel points (default: 1 local, all CPUs on Ray)")
    p_sweep.add_argument("--address", default=None, help="an existing Ray cluster")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.scenario)
        if args.command == "contacts":
            return _contacts(args)
        if args.command == "report":
            return _report(args.runs, args.out)
        if args.command == "sweep":
            return _sweep(args)
        return _run(args.scenario, args.resume or args.out, resume=args.resume is not None)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt as interrupt:
        print(_interrupted(args, interrupt), file=sys.stderr)
        return 130


def _interrupted(args: argparse.Namespace, interrupt: KeyboardInterrupt) -> str:
    """The line after Ctrl-C or SIGTERM: the exact resume command when the run left a
    checkpoint, and no resume advice when it left nothing to resume."""
    from orbitfl.rundir import resume_dir_of

    if args.command != "run":
        return "interrupted"
    run_dir = resume_dir_of(interrupt)
    if run_dir is None:
        return "interrupted before the first round completed: nothing to resume; run it again"
    return (f"interrupted: continue with: orbitfl run {shlex.quote(str(args.scenario))} "
            f"--resume {shlex.quote(str(run_dir))}")


def _validate(path: Path) -> int:
    from orbitfl.prepare import prepare

    prepared = prepare(path)
    for warning in prepared.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: ok ({len(prepared.fleet)} satellites, {len(prepared.stations)} stations)")
    return 0


def _contacts(args: argparse.Namespace) -> int:
    from orbitfl.contacts_report import write_contacts
    from orbitfl.rundir import check_output_file

    for path, what in ((args.out, "contact table"), (args.gantt, "Gantt chart"),
                       (args.ground_track, "ground-track map")):
        if path is not None:
            check_output_file(path, what)
    summary = write_contacts(args.scenario, args.out, args.gantt, args.ground_track)
    print(summary.to_string() if len(summary) else
          "no contact window in the scenario's duration (the table has no rows)")
    print(f"contact plan written to {args.out}")
    return 0


def _report(runs: list[Path], out: Path) -> int:
    from orbitfl.analysis.report import RunDirectoryError, write_report
    from orbitfl.rundir import check_output_dir

    check_output_dir(out, "report folder")
    try:
        written = write_report(runs, out)
    except RunDirectoryError as err:
        raise InputError(str(err)) from None
    print(f"{len(written)} files written to {out} (open {out / 'dashboard.html'})")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from orbitfl.sweep import run_sweep

    table = run_sweep(args.sweep, args.out, args.backend, args.workers, args.address)
    failed = int((table["status"] != "complete").sum())
    print(f"{len(table)} points, {failed} failed; wall time "
          f"{table['wall_time_total_s'].iloc[0]:.1f} s")
    return 0 if failed == 0 else 1


def _run(path: Path, out: Path | None, resume: bool = False) -> int:
    from orbitfl.rundir import check_output_dir

    if out is not None:
        check_output_dir(out, "run directory")  # at once, before the heavy imports
    from orbitfl.runner import run

    s = run(path, out, resume=resume)
    rows = [
        ("satellites", f"{s.satellites}"),
        ("contact windows", f"{s.contacts}"),
        ("rounds completed", f"{s.rounds_completed} / {s.rounds_planned}"),
        ("simulated time", f"{s.sim_time_s / 3600:.2f} h"),
        ("accuracy (initial -> final)", f"{s.initial_accuracy:.3f} -> {s.final_accuracy:.3f}"),
        ("bytes up / down", f"{s.bytes_up / 1e6:.2f} MB / {s.bytes_down / 1e6:.2f} MB"),
        ("wall time", f"{s.wall_time_s:.1f} s"),
        ("run directory", f"{s.run_dir}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
