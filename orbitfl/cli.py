"""orbitfl: simulate a satellite constellation's network and federated learning on it.

Start with `orbitfl init DIR` (a copy of the scenario library). Scenario commands take
--set PATH=VALUE (repeatable) to change the scenario's YAML before validation, e.g.
--set fl.rounds=1 --set duration=6h. Long work shows progress bars on a terminal; -q keeps
only warnings and errors. Bad input exits with code 2 and one line per problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TypeAlias

from orbitfl import __version__
from orbitfl.core.errors import InputError, WorkerLost, os_error_line, stop_on_sigterm
from orbitfl.core.progress import Bars, configure_logging
from orbitfl.scenario.catalogs import CATALOGS, format_table
from orbitfl.scenario.overrides import Override, parse_override

if TYPE_CHECKING:
    from orbitfl.engine.runner import RunSummary

EXIT_INPUT_ERROR = 2
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # subcommands


def _scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    _set_argument(parser, "the scenario")


def _set_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--set", action="append", metavar="PATH=VALUE",
                        help=f"change {what} before validation: a dotted YAML path and a YAML "
                             "value, e.g. fl.rounds=1 or duration=6h (repeatable; a relative "
                             "file path is relative to the current folder)")


def _verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bars and no status lines: warnings and errors only")
    group.add_argument("--verbose", action="store_true",
                       help="also the debug lines (each naming its module)")


def _level(args: argparse.Namespace) -> int:
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", False) else logging.INFO


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # the command's wall time counts its imports too
    stop_on_sigterm()  # SIGTERM stops a run as cleanly as Ctrl-C does
    args = _parser().parse_args(argv)
    configure_logging(_level(args))
    logging.getLogger(__name__).debug(f"orbitfl {__version__} on Python {sys.version.split()[0]}"
                                      f", {args.command} {vars(args)}")
    bars = Bars(enabled=not getattr(args, "quiet", False))
    try:
        return _dispatch(args, bars, started)
    except InputError as err:
        for line in str(err).splitlines():  # several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt as interrupt:
        print(_interrupted(args, interrupt), file=sys.stderr)
        return 130
    except WorkerLost as lost:  # the out-of-memory killer, most likely: no traceback
        print(f"error: {lost}; {_resume_advice(args, lost)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `orbitfl list stations | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a full disk, a quota, a folder removed under the run
        advice = f"; {_resume_advice(args, err)}" if args.command == "run" else ""
        print(f"error: {os_error_line(err)}{advice}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    """Every command and its options (one builder per group of commands)."""
    parser = argparse.ArgumentParser(prog="orbitfl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"orbitfl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_validate_and_run, _add_contacts, _add_report, _add_sweep, _add_others):
        add(commands)
    return parser


def _add_validate_and_run(commands: Commands) -> None:
    p_validate = commands.add_parser("validate", help="check a scenario file; exit 0 or 2")
    _scenario_arguments(p_validate)
    _verbosity_arguments(p_validate)
    p_run = commands.add_parser("run", help="validate, then simulate a scenario")
    _scenario_arguments(p_run)
    p_run.add_argument("--out", type=Path, default=None,
                       help="run directory to create (default: runs/<name>-<UTC time>)")
    p_run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                       help="continue the run into RUN_DIR that stopped early")
    p_run.add_argument("--backend", choices=("serial", "local", "ray"), default=None,
                       help="where clients train (execution.backend): in this process, a "
                            "local process pool or Ray; results are the same")
    p_run.add_argument("--workers", type=int, default=None,
                       help="processes or Ray actors (execution.workers; default: cores)")
    p_run.add_argument("--address", default=None,
                       help="an existing Ray cluster for --backend ray (execution.address)")
    p_run.add_argument("--batched", action="store_const", const=True, default=None,
                       help="train the clients waiting at once together with torch.func.vmap "
                            "(execution.batched; within 1e-4 of one by one)")
    _verbosity_arguments(p_run)


def _add_contacts(commands: Commands) -> None:
    p_contacts = commands.add_parser("contacts", help="write a scenario's contact plan")
    _scenario_arguments(p_contacts)
    p_contacts.add_argument("--out", type=Path, help="table: .csv or .parquet")
    p_contacts.add_argument("--report", type=Path, metavar="DIR",
                            help="also write a contact-plan report into this folder: pass "
                                 "durations, revisit gaps, passes against antennas, data "
                                 "volume per station and day, rate and MODCOD over a pass")
    p_contacts.add_argument("--gantt", type=Path, help="also draw a contact Gantt chart (PNG)")
    p_contacts.add_argument("--ground-track", type=Path, help="also draw ground tracks (PNG)")
    _style_argument(p_contacts)
    _verbosity_arguments(p_contacts)


def _add_report(commands: Commands) -> None:
    p_report = commands.add_parser(
        "report", help="figures and a dashboard from run directories, or from one sweep folder")
    p_report.add_argument("runs", type=Path, nargs="+",
                          help="run directories to compare, or one sweep folder (its study "
                               "report: bands, time to target, paired differences)")
    p_report.add_argument("--out", type=Path, required=True,
                          help="folder for the figures and dashboard.html")
    p_report.add_argument("--format", default="png", type=_formats,
                          help="comma-separated figure formats: png (200 dpi), svg, pdf "
                               "(default: png)")
    p_report.add_argument("--force", action="store_true",
                          help="write into a non-empty folder that is not an earlier report")
    _style_argument(p_report)
    p_report.add_argument("--target", type=float, default=None, metavar="ACCURACY",
                          help="a sweep folder's time-to-target threshold, one the sweep "
                               "table records (0.5 to 0.9; default: the highest one that "
                               "some group reaches)")
    p_report.add_argument("--baseline", action="append", metavar="KEY=VALUE",
                          help="a sweep folder's baseline: the groups with this swept value "
                               "(repeatable), e.g. ground_stations.count=2; every group is "
                               "compared with the baseline that shares its other values "
                               "(default: the first group)")
    _verbosity_arguments(p_report)


def _add_sweep(commands: Commands) -> None:
    p_sweep = commands.add_parser("sweep", help="run a scenario over a grid of values")
    p_sweep.add_argument("sweep", type=Path, help="sweep file (base scenario and values)")
    _set_argument(p_sweep, "the base scenario")
    p_sweep.add_argument("--out", type=Path, default=None,
                         help="sweep directory (default: runs/sweeps/<sweep file name>)")
    p_sweep.add_argument("--backend", choices=("local", "ray"), default="local",
                         help="run points in local worker processes or on Ray")
    p_sweep.add_argument("--workers", type=int, default=None,
                         help="parallel points (default: 1 local, all CPUs on Ray)")
    p_sweep.add_argument("--address", default=None, help="an existing Ray cluster")
    _verbosity_arguments(p_sweep)


def _add_others(commands: Commands) -> None:
    p_list = commands.add_parser("list", help="the names a scenario may use, and what they "
                                              "mean")
    p_list.add_argument("catalog", choices=list(CATALOGS), help="which names to list")
    p_schema = commands.add_parser("schema", help="write the JSON Schema of scenario files "
                                                  "(for editors)")
    p_schema.add_argument("--out", type=Path, default=None,
                          help="file to write (default: standard output)")
    p_init = commands.add_parser("init", help="copy the scenario library (and the element "
                                              "sets it uses) into a folder to start from")
    p_init.add_argument("folder", type=Path, help="folder to create, or an empty one")
    p_init.add_argument("--force", action="store_true",
                        help="copy into a non-empty folder (files of the same names are "
                             "replaced)")


def _dispatch(args: argparse.Namespace, bars: Bars, started: float) -> int:
    """Run the command ``args`` names; its exit code."""
    if args.command == "init":
        return _init(args.folder, args.force)
    if args.command == "list":
        print(format_table(CATALOGS[args.catalog]()))
        return 0
    if args.command == "schema":
        return _schema(args.out)
    overrides = [parse_override(text) for text in getattr(args, "set", None) or ()]
    if args.command == "validate":
        return _validate(args.scenario, overrides)
    if args.command == "contacts":
        return _contacts(args, overrides, bars)
    if args.command == "report":
        return _report(args.runs, args.out, args.format, args.force, args.style,
                       target=args.target, baseline=args.baseline)
    if args.command == "sweep":
        return _sweep(args, overrides, bars)
    overrides += [(f"execution.{key}", getattr(args, key))  # --set with a name
                  for key in ("backend", "workers", "address", "batched")
                  if getattr(args, key) is not None]
    return _run(args.scenario, args.resume or args.out, resume=args.resume is not None,
                overrides=overrides, bars=bars, started=started)


def _interrupted(args: argparse.Namespace, interrupt: KeyboardInterrupt) -> str:
    """The line after Ctrl-C or SIGTERM: the exact resume command when the run left a
    checkpoint (absolute paths, the same --set changes: it works from any folder), and no
    resume advice when it left nothing to resume."""
    if args.command != "run":
        return "interrupted"
    advice = _resume_advice(args, interrupt)
    if advice.startswith("continue"):
        return f"interrupted: {advice}"
    return "interrupted before the first round completed: nothing to resume; run it again"


def _resume_advice(args: argparse.Namespace, stopped: BaseException) -> str:
    """How to go on after a run stopped early: the exact command that resumes it when it
    left a checkpoint (absolute paths, the same --set changes and execution options: it
    works from any folder), else to run it again."""
    from orbitfl.rundir.writer import resume_dir_of

    run_dir = resume_dir_of(stopped)
    if args.command != "run" or run_dir is None:
        return "nothing to resume: run it again"
    options = "".join(f" --set {shlex.quote(text)}" for text in args.set or ())
    for key in ("backend", "workers", "address"):
        if getattr(args, key) is not None:
            options += f" --{key} {shlex.quote(str(getattr(args, key)))}"
    if args.batched:
        options += " --batched"
    scenario, into = (shlex.quote(os.path.abspath(p)) for p in (args.scenario, run_dir))
    return f"continue with: orbitfl run {scenario}{options} --resume {into}"


def _validate(path: Path, overrides: list[Override]) -> int:
    from orbitfl.engine.prepare import prepare

    prepared = prepare(path, overrides, purpose="validate")
    prepared.log_warnings()
    plan_only = "" if prepared.scenario.learns else \
        "; no fl: section: it describes a contact plan only, for orbitfl contacts"
    print(f"{path}: ok ({len(prepared.fleet)} satellites, {len(prepared.stations)} stations"
          f"{plan_only})")
    return 0


def _contacts(args: argparse.Namespace, overrides: list[Override], bars: Bars) -> int:
    from orbitfl.commands.contacts_report import write_contacts
    from orbitfl.rundir.writer import check_output_file

    if args.out is None and args.report is None:
        raise InputError("orbitfl contacts: give --out TABLE, --report DIR, or both")
    for path, what in ((args.out, "contact table"), (args.gantt, "Gantt chart"),
                       (args.ground_track, "ground-track map")):
        if path is not None:
            check_output_file(path, what)
    summary = write_contacts(args.scenario, args.out, args.gantt, args.ground_track,
                             overrides=overrides, progress=bars, report=args.report,
                             style=args.style)
    print(summary.to_string() if len(summary) else
          "no contact window in the scenario's duration (the table has no rows)")
    for path, what in ((args.out, "contact plan"), (args.report, "contact report")):
        if path is not None:
            print(f"{what} written to {path}")
    return 0


def _formats(text: str) -> tuple[str, ...]:
    """``png,svg,pdf`` as a tuple of known figure formats (argparse reports a bad one)."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more of png, svg, pdf, comma-separated")
    return formats


def _style_argument(parser: argparse.ArgumentParser) -> None:
    from orbitfl.analysis.style import STYLES

    parser.add_argument("--style", choices=list(STYLES), default="screen",
                        help="figure sizes and type for the medium: screen (default), paper "
                             "(3.5 in single and 7.16 in double columns, 7-9 pt) or slides "
                             "(16:9, large type)")


def _report(runs: list[Path], out: Path, formats: tuple[str, ...] = ("png",),
            force: bool = False, style: str = "screen", target: float | None = None,
            baseline: list[str] | None = None) -> int:
    from orbitfl.analysis.report import write_report
    from orbitfl.analysis.report_folder import is_report
    from orbitfl.analysis.run_model import RunDirectoryError
    from orbitfl.analysis.sweep_report import write_sweep_report
    from orbitfl.rundir.writer import check_report_dir

    check_report_dir(out, "report folder", is_report, force, "--force")
    try:
        if len(runs) == 1 and (runs[0] / "sweep.parquet").is_file():
            written = write_sweep_report(runs[0], out, formats, style=style, target=target,
                                         baseline=baseline)
        else:
            for given, option in ((target, "--target"), (baseline, "--baseline")):
                if given is not None:
                    raise InputError(f"{option} applies to a sweep folder (one folder "
                                     "holding sweep.parquet), not to run directories")
            written = write_report(runs, out, formats=formats, style=style)
    except RunDirectoryError as err:
        raise InputError(str(err)) from None
    print(f"{len(written)} files written to {out} (open {out / 'dashboard.html'})")
    return 0


def _sweep(args: argparse.Namespace, overrides: list[Override], bars: Bars) -> int:
    from orbitfl.sweeps.runner import run_sweep

    table = run_sweep(args.sweep, args.out, args.backend, args.workers, args.address,
                      overrides=overrides, progress=bars)
    failed = int((table["status"] != "complete").sum())
    reused = int(table["reused"].fillna(False).astype(bool).sum())
    print(f"{len(table)} points, {failed} failed; wall time "
          f"{table['wall_time_total_s'].iloc[0]:.1f} s"
          f"{f' ({reused} reused from an earlier call, not counted)' if reused else ''}")
    return 0 if failed == 0 else 1


def _schema(out: Path | None) -> int:
    import json

    from orbitfl.core.atomic import atomic_write_text
    from orbitfl.rundir.writer import check_output_file
    from orbitfl.scenario.json_schema import scenario_json_schema

    if out is not None:
        check_output_file(out, "schema file")
    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(out, text)
    print(f"scenario JSON Schema written to {out}")
    return 0


def _init(folder: Path, force: bool) -> int:
    from orbitfl.commands.init_cmd import init, next_steps

    print(next_steps(folder, init(folder, force)))
    return 0


def _run(path: Path, out: Path | None, resume: bool = False,
         overrides: Sequence[Override] = (), bars: Bars | None = None,
         started: float | None = None) -> int:
    from orbitfl.engine.ray_address import check_address
    from orbitfl.rundir.writer import check_output_dir

    if out is not None:
        check_output_dir(out, "run directory")  # at once, before the heavy imports
    check_address(dict(overrides).get("execution.address"), "--address")
    from orbitfl.engine.runner import run

    s = run(path, out, resume=resume, overrides=overrides, progress=bars)
    rows = [
        ("satellites", f"{s.satellites}"),
        ("contact windows", f"{s.contacts}"),
        ("rounds completed", f"{s.rounds_completed} / {s.rounds_planned}"),
        ("simulated time", f"{s.sim_time_s / 3600:.2f} h"),
        ("accuracy (initial -> final)", f"{s.initial_accuracy:.3f} -> {s.final_accuracy:.3f}"),
        *([("mIoU (initial -> final)", f"{s.initial_miou:.3f} -> {s.final_miou:.3f}")]
          if s.initial_miou is not None and s.final_miou is not None else []),
        # one seed's numbers carry no interval: say so where they are read
        ("uncertainty", "one seed, no interval: replicates in `orbitfl sweep` give one "
                        "(docs/planner-guide.md)"),
        ("bytes up / down", f"{s.bytes_up / 1e6:.2f} MB / {s.bytes_down / 1e6:.2f} MB"),
        ("wall time", wall_time_line(s, s.wall_time_s if started is None
                                     else time.perf_counter() - started)),
        ("run directory", f"{s.run_dir}"),
    ]
    if s.resumed_after_round is not None:  # the command's time above is this process's
        rows.insert(-1, (f"whole run (resumed after round {s.resumed_after_round})",
                         f"{s.wall_time_s:.1f} s"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


def wall_time_line(summary: RunSummary, total_s: float) -> str:
    """The command's wall time and where it went: ``total_s`` counts everything since the
    command started (imports, the run directory's tables and files); the parts are the
    run's own timings."""
    parts = [("preparation", summary.prepare_s), ("mission", summary.mission_s),
             ("report", summary.report_s)]
    parts.append(("start-up and tables", max(0.0, total_s - sum(t for _, t in parts))))
    return f"{total_s:.1f} s, of which " + ", ".join(f"{name} {t:.1f} s" for name, t in parts)


if __name__ == "__main__":
    sys.exit(main())
