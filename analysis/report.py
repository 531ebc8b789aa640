"""``orbitfl report``: figures and an offline dashboard from one or more run directories.

Analysis reads only run directories (the parquet tables and ``manifest.json``), so reports
can be made long after the runs, on another machine.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orbitfl.core.gc_freeze import older_objects_frozen  # noqa: E402

from .dashboard import write_dashboard  # noqa: E402
from .figures import (  # noqa: E402
    ACCURACIES,
    FACTOR_COLOURS,
    FACTOR_HATCHES,
    MAX_PANELS,
    class_names,
    draw_gantt,
    draw_tracks,
    empty_note,
    gantt_rows,
    literal,
    save_formats,
)
from .report_folder import marked  # noqa: E402
from .run_data import (  # noqa: E402
    FACTORS,
    bytes_by_kind,
    energy_per_satellite,
    pass_utilisation,
    round_breakdown,
    worst_satellites,
)
from .run_model import MB, load_run  # noqa: E402
from .style import (  # noqa: E402
    cue,
    current_style,
    figure_style,
    resolve,
)
from .styled import StyledRun, styled  # noqa: E402

SHOTS = (("many_shot_accuracy", "many-shot"), ("medium_shot_accuracy", "medium-shot"),
         ("few_shot_accuracy", "few-shot"))


logger = logging.getLogger(__name__)


def write_report(run_dirs: list[Path], out: Path, dashboard: Path | None = None,
                 formats: tuple[str, ...] = ("png",), style: str = "screen",
                 progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Every view in each of ``formats`` into ``out``, drawn in ``style`` (screen, paper or
    slides: ``analysis/style.py``), ``dashboard.html`` (into ``out`` unless ``dashboard``)
    and the ``MARKER`` file listing what was written. Drawing takes seconds to a minute:
    status lines say what is being drawn, and ``progress`` (done, total) moves a bar once
    per view and once for the dashboard."""
    resolve(style)  # an unknown style is refused before anything is written
    advance = progress or (lambda done, total: None)
    runs = styled([load_run(p) for p in run_dirs])
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    steps, started = len(VIEWS) + 1, time.perf_counter()
    logger.info(f"report: drawing {len(VIEWS)} figures ({', '.join(formats)})")
    # the mission's objects (orbitfl/core/gc_freeze.py)
    with older_objects_frozen(), figure_style(style):
        for done, (name, view) in enumerate(VIEWS.items()):
            logger.debug(f"report: {name}")
            written += save_formats(view(runs), out / name, formats)
            advance(done + 1, steps)
        page = dashboard or out / "dashboard.html"
        logger.info(f"report: figures drawn in {time.perf_counter() - started:.1f} s; "
                    f"writing {page.name}")
        written.append(write_dashboard(runs, page))
        advance(steps, steps)
    logger.info(f"report: done in {time.perf_counter() - started:.1f} s")
    return marked(out, [r.data.path for r in runs], written)


def _panels(count: int, cols: int = 3, aspect: float | None = None, wide: bool = False,
            min_height: float = 0.0):
    """A grid of ``count`` panels (small multiples) sized by the active style, axes
    flattened, spare ones hidden. ``aspect``: a panel's height / width (style's default);
    ``wide``: the wide width even for one panel; ``min_height``: inches the content needs."""
    cols = max(1, min(cols, count))
    rows = -(-count // cols)
    size = current_style().size(cols, rows, aspect, wide, min_height)
    fig, axes = plt.subplots(rows, cols, figsize=size, layout="constrained", squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _accuracy_view(x_of, xlabel: str, target_x, columns=ACCURACIES, miou: bool = True):
    """Accuracy panels (one per metric, and with ``miou`` a panel of mIoU where a
    segmentation run measured it) against ``x_of(run)``, runs in their colours; a star at
    each time-to-target threshold the run reached, on the panel of the metric its targets
    read."""
    def draw(runs: list[StyledRun]):
        shown = [*columns, *([MIOU] if miou and any(_measured(run, MIOU[0]) for run in runs)
                             else [])]
        fig, axes = _panels(len(shown), cols=2 if len(shown) in (4, 5) else 3)
        for ax, (column, label) in zip(axes, shown):
            for run in runs:
                rounds = run.data.rounds
                rows = rounds["accuracy"].notna() & rounds.get(column, pd.Series(
                    dtype=float)).reindex(rounds.index).notna()
                if not rows.any():  # a metric this run did not measure: no empty trace
                    continue
                ax.plot(np.asarray(x_of(run))[rows], 100 * rounds.loc[rows, column],
                        marker=run.cue.marker, ms=3, color=run.colour,
                        label=literal(run.name))
                if column == run.data.manifest.get("time_to_target_metric", "accuracy"):
                    _targets(ax, run, target_x)
            what = label if column == MIOU[0] else f"{label} accuracy"
            ax.set(xlabel=xlabel, ylabel=f"{what} (%)", ylim=(0, 100))
            ax.grid(alpha=0.3)
            _legend_or_note(ax, runs, f"no {what} evaluated", legend=False)
        _figure_legend(fig, axes)  # one legend: the runs' looks are shared
        return fig
    return draw


MIOU = ("miou", "test mIoU")  # segmentation's score (its accuracy counts pixels)


def _measured(run: StyledRun, column: str) -> bool:
    rounds = run.data.rounds
    return column in rounds and bool(rounds[column].notna().any())


def _targets(ax, run: StyledRun, target_x) -> None:
    """Time-to-target markers from the manifest (thresholds never reached are absent)."""
    reached = run.data.manifest.get("time_to_target") or {}
    for threshold, hit in reached.items():
        if isinstance(hit, dict):
            x = target_x(hit)
            ax.plot([x], [100 * float(threshold)], marker="*", ms=10, color=run.colour,
                    mec="k", mew=0.5, ls="none")
            ax.annotate(f"{100 * float(threshold):.0f}%", (x, 100 * float(threshold)),
                        xytext=(4, -8), textcoords="offset points",
                        fontsize=current_style().tiny)


def _legend_or_note(ax, runs, why: str, legend: bool = True) -> None:
    """A legend when something was drawn; otherwise say on the figure why it is empty."""
    if ax.has_data():
        if legend:
            ax.legend()
    else:
        empty_note(ax, f"{why} in {', '.join(literal(run.name) for run in runs)}")


def _unit(largest: float) -> tuple[float, str]:
    """A byte unit in which ``largest`` reads as a number people can compare."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if largest >= scale:
            return scale, unit
    return 1.0, "bytes"


def _bytes_by_kind(runs: list[StyledRun]):
    """Delivered bytes per payload kind as horizontal bars, one per run (kinds named on the
    axis: long names never collide), uplink and downlink apart, each run's total on top.
    A kind that moved nothing in a direction is not listed there; the axis is logarithmic
    when the bars span more than two decades (control messages beside model weights)."""
    tables = [bytes_by_kind(run.data) for run in runs]
    panels = {d: _drawn_kinds(tables, d) for d in ("up", "down")}
    rows = max(len(frame) for frame in panels.values())
    style = current_style()
    fig, axes = _panels(2, cols=2, min_height=style.rows_height(max(1, rows * len(runs))))
    for ax, direction in zip(axes, ("up", "down")):
        data = panels[direction]
        ax.set_title("ground to satellites (up)" if direction == "up"
                     else "satellites to ground (down)")
        if data.empty:
            empty_note(ax, "no payload delivered")
            continue
        scale, unit = _unit(float(data.to_numpy().max()))
        height = 0.8 / len(runs)
        for i, run in enumerate(runs):
            values = data[i].to_numpy(dtype=float) / scale
            bars = ax.barh(np.arange(len(data)) - 0.4 + (i + 0.5) * height, values, height,
                           color=run.colour, hatch=run.cue.hatch or None, edgecolor="0.15",
                           linewidth=0, label=literal(run.name, 30))
            ax.bar_label(bars, [f"{v:.3g}" if v else "" for v in values], padding=2,
                         fontsize=style.tiny)
        ax.set_yticks(range(len(data)), [literal(k) for k in data.index])
        ax.invert_yaxis()
        _value_axis(ax, data.to_numpy(dtype=float) / scale)
        ax.set_xlabel(f"{unit} delivered" + (" (log scale)" if ax.get_xscale() == "log"
                                             else ""))
        ax.grid(alpha=0.3, axis="x")
    _figure_legend(fig, axes)
    return fig


def _figure_legend(fig, axes) -> None:
    """One legend for the whole figure, below the panels (never over the data), of every
    labelled artist in ``axes`` (each label once)."""
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncols=min(4, len(entries)))


def _drawn_kinds(tables: list[pd.DataFrame], direction: str) -> pd.DataFrame:
    """Kinds (rows, ``total`` first) by run (columns 0..n-1) of the bytes delivered in one
    direction; kinds no run delivered are left out, and so is everything when none was."""
    frame = pd.DataFrame({i: t[direction] for i, t in enumerate(tables)}).fillna(0)
    frame = frame[(frame > 0).any(axis=1)].sort_index()
    if frame.empty:
        return frame
    return pd.concat([frame.sum().to_frame("total").T, frame])


def _value_axis(ax, values: np.ndarray) -> None:
    """A logarithmic x axis when the positive ``values`` span more than two decades, else
    linear from zero; room on the right for the value labels either way."""
    positive = values[values > 0]
    if positive.max() > 100 * positive.min():
        ax.set_xscale("log")
        ax.set_xlim(positive.min() / 3, positive.max() * 20)
    else:
        ax.set_xlim(0, positive.max() * 1.3)


def _cumulative_bytes(runs: list[StyledRun]):
    """Cumulative delivered bytes by kind against simulated time, uplink and downlink
    apart (rounds.parquet's ``bytes_<up|down>_<kind>`` columns): runs by colour and marker,
    kinds by line style (each kind its own, the same in both panels); kinds that moved
    nothing are left out; a log axis when the curves span more than two decades."""
    kinds = sorted({c.split("_", 2)[2] for run in runs for c in run.data.rounds.columns
                    if c.startswith(("bytes_up_", "bytes_down_"))})
    dashes = {kind: cue(i).linestyle for i, kind in enumerate(kinds)}
    fig, axes = _panels(2, cols=2)
    drawn: dict = {}
    for ax, direction in zip(axes, ("up", "down")):
        prefix, peaks = f"bytes_{direction}_", []
        for run in runs:
            rounds = run.data.rounds
            for kind in kinds:
                values = rounds.get(prefix + kind)
                if values is None or not (values > 0).any():
                    continue
                ax.step(rounds["sim_time_s"] / 3600, values.where(values > 0) / MB,
                        where="post", ls=dashes[kind], color=run.colour, marker=run.cue.marker,
                        ms=3)
                drawn[kind] = dashes[kind]
                peaks += [float(values[values > 0].min()), float(values.max())]
        if peaks and max(peaks) > 100 * min(peaks):
            ax.set_yscale("log")
        ax.set(xlabel="simulated time (h)", title="up (ground to satellites)"
               if direction == "up" else "down (satellites to ground)",
               ylabel="cumulative MB delivered" + (" (log scale)" if ax.get_yscale() == "log"
                                                   else ""))
        ax.grid(alpha=0.3)
        _legend_or_note(ax, runs, "no payload delivered", legend=False)
    if drawn:
        _runs_and_kinds_legend(fig, runs, drawn)
    return fig


def _runs_and_kinds_legend(fig, runs: list[StyledRun], dashes: dict) -> None:
    """One legend below the panels: the runs (colour and marker), then the payload kinds
    (line style, in grey), rather than an entry per run and kind."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=r.colour, marker=r.cue.marker, ms=3,
                      label=literal(r.name, 30)) for r in runs]
    handles += [Line2D([], [], color="0.2", ls=ls, label=literal(kind))
                for kind, ls in sorted(dashes.items())]
    fig.legend(handles=handles, loc="outside lower center", handlelength=3.5,
               ncols=min(4, len(handles)))


def _link_utilisation(runs: list[StyledRun]):
    """Per pass, capacity against bytes moved (each direction) on log axes (capacities span
    decades, and most passes of a downlink move little); passes that moved nothing are
    ticks along the bottom. Then the distribution of the share of contact time used."""
    fig, axes = _panels(3, cols=3)
    tables = {run.name: pass_utilisation(run.data) for run in runs}
    for ax, direction in zip(axes, ("down", "up")):
        idle_drawn = False
        for run in runs:
            mine = tables[run.name][tables[run.name]["direction"] == direction]
            mine = mine[mine["capacity"] > 0]
            used = mine["moved"] > 0
            ax.scatter(mine.loc[used, "capacity"] / MB, mine.loc[used, "moved"] / MB, s=10,
                       color=run.colour, marker=run.cue.marker, alpha=0.7,
                       label=literal(run.name))
            if (~used).any():  # log axes have no zero: a rug along the bottom instead
                ax.plot(mine.loc[~used, "capacity"] / MB, np.full(int((~used).sum()), 0.02),
                        transform=ax.get_xaxis_transform(), marker="|", ms=8, ls="none",
                        color=run.colour, alpha=0.7)
                idle_drawn = True
        if ax.has_data():
            _log_log(ax, idle_drawn)
        ax.set(xlabel="pass capacity (MB)", ylabel="MB moved in the pass",
               title=f"{direction}link, per pass")
        ax.grid(alpha=0.3)
        _legend_or_note(ax, runs, "no contact window", legend=False)
    ax = axes[2]
    for run in runs:
        share = np.sort(tables[run.name]["time_share"].dropna().to_numpy())
        if len(share):
            ax.step(100 * share, np.arange(1, len(share) + 1) / len(share), where="post",
                    color=run.colour, ls=run.cue.linestyle, label=literal(run.name))
    ax.set(xlabel="share of pass time used (%)", ylabel="fraction of passes",
           xlim=(0, 100), ylim=(0, 1.02), title="time used per pass")
    ax.grid(alpha=0.3)
    _legend_or_note(ax, runs, "no contact window", legend=False)
    _figure_legend(fig, axes)
    return fig


def _log_log(ax, idle_drawn: bool) -> None:
    """Both axes logarithmic over the same range (the diagonal is a full pass; points far
    below it are passes that moved little), with room below the points for the rug of
    passes that moved nothing. Without any positive value (no pass) the axes stay linear."""
    points = np.concatenate([np.asarray(c.get_offsets(), float).reshape(-1, 2)
                             for c in ax.collections] +
                            [np.column_stack([line.get_xdata(), line.get_xdata()])
                             for line in ax.get_lines()] + [np.empty((0, 2))])
    positive = points[points > 0]
    if not len(positive):
        return
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = positive.min() / 4, positive.max() * 2
    ax.set(xlim=(lo, hi), ylim=(lo, hi))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--", label="full pass")
    if idle_drawn:
        ax.plot([], [], marker="|", ms=8, ls="none", color="0.3",
                label="moved nothing (ticks)")


def _battery(runs: list[StyledRun]):
    """State of charge, one panel per satellite (worst-off first), every run overlaid."""
    satellites = worst_satellites([r.data for r in runs], MAX_PANELS)
    fig, axes = _panels(max(1, len(satellites)), cols=4, aspect=0.66)
    for ax, satellite in zip(axes, satellites):
        for run in runs:
            power = run.data.power
            if power is not None and len(power):
                trace = power[power["satellite"] == satellite]
                ax.plot(trace["t_s"] / 3600, 100 * trace["soc"], lw=0.8, color=run.colour,
                        ls=run.cue.linestyle,
                        label=literal(run.name))
        ax.set(ylim=(0, 100), title=literal(satellite), xlabel="simulated time (h)",
               ylabel="state of charge (%)")
        ax.grid(alpha=0.3)
    if satellites:
        _figure_legend(fig, axes[:1])
    else:
        empty_note(axes[0], "no battery trace (power.parquet) in "
                   + ", ".join(literal(r.name) for r in runs))
    fig.suptitle("battery state of charge, worst-off satellites first")
    return fig


def _energy(runs: list[StyledRun]):
    """Energy per satellite, runs side by side (worst-off satellites first)."""
    satellites = worst_satellites([r.data for r in runs], MAX_PANELS)
    fig, axes = _panels(4, cols=2)
    width = 0.8 / len(runs)
    tables = [energy_per_satellite(run.data).reindex(satellites).fillna(0.0) for run in runs]
    for ax, (column, ylabel) in zip(axes, ENERGY_BOOKS):
        for i, (run, table) in enumerate(zip(runs, tables)):
            ax.bar(np.arange(len(satellites)) + i * width, table[column], width,
                   color=run.colour, hatch=run.cue.hatch or None, edgecolor="0.15",
                   linewidth=0, label=literal(run.name, 30))
        ax.set_xticks(np.arange(len(satellites)) + 0.4 - width / 2,
                      [literal(s, 20) for s in satellites], rotation=30, ha="right",
                      rotation_mode="anchor", fontsize=current_style().tiny)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
        ax.set_ylim(bottom=0)  # an all-zero book is not centred on zero
        _legend_or_note(ax, runs, "no battery trace", legend=False)
    _figure_legend(fig, axes[:1])
    return fig




def _breakdown_panel(ax, run: StyledRun) -> None:
    """One run's rounds as horizontal stacked bars of the factors, in hours."""
    table = round_breakdown(run.data) / 3600
    left = np.zeros(len(table))
    for factor in FACTORS:
        if len(table) and table[factor].any():
            ax.barh(table.index, table[factor], left=left, color=FACTOR_COLOURS[factor],
                    hatch=FACTOR_HATCHES[factor] or None, edgecolor="0.15", linewidth=0,
                    label=factor, height=0.7)
            left += table[factor].to_numpy()
    ax.set(xlabel="hours of the round", ylabel="round")
    ax.set_title(f"what each round waited for: {literal(run.name)}", color=run.colour)
    ax.invert_yaxis()
    ax.grid(alpha=0.3, axis="x")
    if len(table):
        ax.set_yticks(table.index)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        empty_note(ax, f"no round closed by an update in {literal(run.name)} (or a run "
                   "directory without clients.parquet)")


ENERGY_BOOKS = (("mission", "training + radios (kJ)"), ("bus", "rest of the bus (kJ)"),
                ("wasted", "solar wasted, battery full (kJ)"),
                ("unserved", "demand unserved, battery empty (kJ)"))


def _per_class(runs: list[StyledRun]):
    """Final per-class accuracy as grouped bars, one colour per run, classes named."""
    finals = {run.name: np.asarray(evaluated.iloc[-1]["per_class_accuracy"], dtype=float)
              for run in runs if len(evaluated := run.data.evaluated)}
    classes = max((len(v) for v in finals.values()), default=0)
    named = next((run for run in runs if len(finals.get(run.name, ())) == classes), runs[0])
    names = class_names(named.data.manifest, classes)
    wide = classes * len(finals) > 8
    fig, ax = plt.subplots(figsize=current_style().size(wide=wide, aspect=0.4 if wide else None),
                           layout="constrained")
    width = 0.8 / max(1, len(finals))
    for i, run in enumerate(r for r in runs if r.name in finals):
        values = finals[run.name]
        ax.bar(np.arange(len(values)) + i * width, 100 * values, width, color=run.colour,
               hatch=run.cue.hatch or None, edgecolor="0.15", linewidth=0,
               label=literal(run.name))
    ax.set_xticks(np.arange(classes) + 0.4 - width / 2, names,
                  rotation=30 if classes > 6 else 0, ha="right" if classes > 6 else "center")
    ax.set(ylabel="final per-class accuracy (%)", ylim=(0, 100))
    ax.grid(alpha=0.3, axis="y")
    _legend_or_note(ax, runs, "no evaluated round")
    return fig


def _per_run(draw, aspect: float, rows=lambda run: 0):
    """One panel per run (small multiples, the wide width) for views that cannot overlay
    runs: ``aspect`` a panel's height / width, ``rows(run)`` its labelled rows (each needs
    room for a line of text)."""
    def view(runs: list[StyledRun]):
        style = current_style()
        need = sum(style.rows_height(rows(run), extra=0.6) for run in runs)
        fig, axes = _panels(len(runs), cols=1, aspect=aspect, wide=True, min_height=need)
        for ax, run in zip(axes, runs):
            draw(ax, run)
        return fig
    return view


def _gantt_panel(ax, run: StyledRun) -> None:
    draw_gantt(ax, run.data.contacts, title=f"contact windows: {literal(run.name)}")
    ax.title.set_color(run.colour)


def _tracks_panel(ax, run: StyledRun) -> None:
    tracks, stations = run.data.tracks, run.data.stations
    if tracks is None or stations is None:
        empty_note(ax, f"no ground tracks recorded in {literal(run.name)}")
        ax.set_title(literal(run.name), color=run.colour)
        return
    scenario = run.data.manifest.get("scenario")
    epoch = scenario.get("epoch") if isinstance(scenario, dict) else None
    draw_tracks(ax, tracks, stations, title=f"ground tracks: {literal(run.name)}",
                epoch=epoch if isinstance(epoch, str) else None)
    ax.title.set_color(run.colour)


VIEWS = {
    "accuracy_vs_bytes": _accuracy_view(
        lambda r: r.data.total_bytes, "cumulative bytes moved, up + down (MB)",
        lambda hit: (hit["bytes_up"] + hit["bytes_down"]) / MB),
    "accuracy_vs_time": _accuracy_view(
        lambda r: r.data.rounds["sim_time_s"] / 3600, "simulated time (h)",
        lambda hit: hit["sim_time_s"] / 3600),
    "accuracy_vs_energy": _accuracy_view(
        lambda r: r.data.energy_kj, "cumulative training + radio energy (kJ)",
        lambda hit: hit["energy_j"] / 1e3),
    "few_shot_accuracy": _accuracy_view(
        lambda r: r.data.total_bytes, "cumulative bytes moved, up + down (MB)",
        lambda hit: (hit["bytes_up"] + hit["bytes_down"]) / MB, SHOTS, miou=False),
    "bytes_by_kind": _bytes_by_kind,
    "bytes_vs_time": _cumulative_bytes,
    "link_utilisation": _link_utilisation,
    "per_class_accuracy": _per_class,
    "battery": _battery,
    "energy_per_satellite": _energy,
    "round_breakdown": _per_run(_breakdown_panel, 0.3, lambda run: len(run.data.rounds)),
    "contact_gantt": _per_run(_gantt_panel, 0.26, lambda run: gantt_rows(
        run.data.contacts, current_style().width(wide=True))),
    "ground_tracks": _per_run(_tracks_panel, 0.52),
}
