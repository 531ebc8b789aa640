"""``orbitfl report SWEEP_DIR``: the study report of any sweep. Per group (a point and its
replicates): accuracy bands against bytes, time and energy; time to target against each
swept parameter with censoring marked; paired differences against a baseline group with
Holm-adjusted intervals; where the time to target goes (rounds needed against hours per
round); the Pareto figure with coinciding points marked; ``summary.md`` and ``summary.csv``
(one row per group and metric), ``time_split.csv`` and the interactive sweep page.

Reads the sweep folder only: ``sweep.parquet`` and the replicates' run directories under
``runs/``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orbitfl.core.atomic import atomic_write, atomic_write_text
from orbitfl.rundir.columns import check_columns

from .comparisons import ACCURACY_METRICS, COST_METRICS, summary
from .figures import save_formats
from .pareto import pareto_view
from .report_folder import marked
from .style import figure_style, resolve
from .sweep_data import Sweep, SweepTableError, load_sweep, parse_baseline
from .sweep_figures import bands_figure, time_split_figure, ttt_figure
from .sweep_markdown import differences_table, groups_table, split_table, target_unit
from .time_split import time_split
from .time_to_target import choose_target

FIGURES = {"accuracy_bands_vs_bytes": lambda s, t, x: bands_figure(s, "bytes"),
           "accuracy_bands_vs_time": lambda s, t, x: bands_figure(s, "time"),
           "accuracy_bands_vs_energy": lambda s, t, x: bands_figure(s, "energy"),
           "time_to_target": lambda s, t, x: ttt_figure(s, t),
           "time_split": lambda s, t, x: time_split_figure(s, x),
           "pareto": lambda s, t, x: pareto_view(s.table, s.parameters)}


def write_sweep_report(sweep_dir: Path, out: Path, formats: tuple[str, ...] = ("png",),
                       style: str = "screen", target: float | None = None,
                       baseline: list[str] | None = None) -> list[Path]:
    """Every file of the sweep report into ``out`` (see the module's docstring), drawn in
    ``style`` (``analysis/style.py``); an unknown style and bad ``--target`` or
    ``--baseline`` values are one-line ``InputError``s, raised before a file is written."""
    resolve(style)
    with figure_style(style):
        return _write(sweep_dir, out, formats, target, baseline)


def _write(sweep_dir: Path, out: Path, formats: tuple[str, ...], target: float | None,
           baseline: list[str] | None) -> list[Path]:
    from .sweep_page import write_sweep_dashboard

    sweep = load_sweep(sweep_dir)
    statuses = sweep.table["status"].value_counts()
    if "complete" not in statuses:
        raise SweepTableError(f"{sweep_dir}: no run of the sweep completed ("
                              f"{', '.join(f'{n} {s}' for s, n in statuses.items()) or 'none'}"
                              "): nothing to report; see points/*.log")
    spec = parse_baseline(baseline, sweep)
    threshold = choose_target(sweep, target)
    numbers = summary(sweep, spec, threshold)
    split = time_split(sweep, threshold)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        written += save_formats(draw(sweep, threshold, split), out / name, formats)
    written += [_csv(out / "summary.csv", numbers),
                _csv(out / "time_split.csv", _with_parameters(sweep, split))]
    written.append(atomic_write_text(out / "summary.md", markdown(
        sweep, numbers, split, threshold, spec, formats[0])))
    written.append(write_sweep_dashboard(sweep, numbers, threshold, out / "dashboard.html"))
    return marked(out, [Path(sweep_dir)], written)


def _with_parameters(sweep: Sweep, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each group's swept values as columns after ``group``."""
    values = pd.DataFrame([{"group": g, **sweep.values[g]} for g in sweep.groups],
                          columns=["group", *sweep.parameters])
    return values.merge(frame, on="group", how="right")


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    """A table whose columns ``orbitfl.rundir.columns`` declares (and documents), whole or not."""
    check_columns(path.name, list(frame.columns))
    return atomic_write(path, lambda partial: frame.to_csv(partial, index=False))


def markdown(sweep: Sweep, numbers: pd.DataFrame, split: pd.DataFrame,
             threshold: float | None, spec: dict, fmt: str) -> str:
    """``summary.md``: what was swept, the three tables, notes and the figures."""
    table = sweep.table
    counts = table.groupby("group")["replicate"].count()
    failed = int((table["status"] != "complete").sum())
    comparisons = int(numbers["comparisons"].max()) if numbers["comparisons"].notna().any() \
        else 0
    lines = [f"# Sweep report: {sweep.path.name}", "",
             f"{len(sweep.groups)} groups of {counts.min()}"
             f"{'' if counts.min() == counts.max() else f' to {counts.max()}'} replicate(s) "
             f"({len(table)} runs, {failed} not complete); swept: "
             f"{', '.join(sweep.parameters) or 'nothing'}. Cells are mean ± sd "
             "[95 % t-interval of the mean] over a group's complete replicates. Time to "
             "target is the Kaplan-Meier median [95 % interval] of the simulated time, "
             "replicates that never reached counted as censored at their last time; "
             "`∞`: the data bound it only from below.", "",
             "## Groups", "", *groups_table(sweep, numbers, threshold, ACCURACY_METRICS), "",
             "## Costs", "", *groups_table(sweep, numbers, None, COST_METRICS), "",
             "## Paired differences against the baseline", "",
             "Baseline: " + (", ".join(f"{k}={v}" for k, v in spec.items()) or "the first "
                             "group") + ". Each group minus its baseline, paired by "
             "replicate; " + (f"intervals are simultaneous 95 % (Bonferroni) over the "
                              f"{comparisons} comparisons of each metric, agreeing with "
                              "Holm's adjusted p-values (`summary.csv`: `p_holm`)."
                              if comparisons > 1 else "95 % t-intervals."), "",
             *differences_table(sweep, numbers), ""]
    if threshold is not None:
        lines += [f"## Where the time to {100 * threshold:g} %{target_unit(numbers)} goes", "",
                  "Time to target = rounds needed (learning: a better algorithm needs "
                  "fewer) x simulated hours per round (network: more stations or faster "
                  "links shorten them), the round's time split by what the rounds waited "
                  "for (all rounds of the complete replicates pooled).", "",
                  *split_table(sweep, split), ""]
    else:
        lines += ["No replicate reached any recorded accuracy threshold: no time to "
                  "target.", ""]
    if sweep.unreadable:
        lines += ["Run directories that could not be read (their curves and round "
                  "breakdowns are missing):", ""] + \
            [f"- {point}: {why}" for point, why in list(sweep.unreadable.items())[:10]] + \
            ([f"- and {len(sweep.unreadable) - 10} more"] if len(sweep.unreadable) > 10
             else []) + [""]
    lines += ["## Figures", ""] + [f"![{name}]({name}.{fmt})" for name in FIGURES] + [""]
    return "\n".join(lines)
