"""``orbitfl report``: figures and an offline dashboard from one or more run directories.

Analysis reads only run directories (the parquet tables and ``manifest.json``), so reports
can be made long after the runs, on another machine.
"""

from __future__ import annotations

import json
import logging
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orbitfl.atomic import atomic_write_text  # noqa: E402
from orbitfl.errors import InputError  # noqa: E402
from orbitfl.gc_freeze import older_objects_frozen  # noqa: E402
from orbitfl.user_json import read_json_file  # noqa: E402

from .figures import (  # noqa: E402
    class_names,
    draw_gantt,
    draw_tracks,
    empty_note,
    gantt_rows,
    literal,
    run_cues,
    save_formats,
)
from .rundir_check import RunDirectoryError, check_manifest, read_table  # noqa: E402
from .style import (  # noqa: E402
    HATCHES,
    PALETTE,
    Cue,
    cue,
    current_style,
    figure_style,
    resolve,
)

MB = 1e6
REQUIRED = ("manifest.json", "rounds.parquet", "transfers.parquet", "contacts.parquet")
MARKER = "orbitfl-report.json"  # marks a folder as a report that may be written over
MAX_PANELS = 12
ACCURACIES = (("accuracy", "overall"), ("balanced_accuracy", "balanced"),
              ("few_shot_accuracy", "few-shot"), ("personalised_accuracy", "personalised"))
SHOTS = (("many_shot_accuracy", "many-shot"), ("medium_shot_accuracy", "medium-shot"),
         ("few_shot_accuracy", "few-shot"))


logger = logging.getLogger(__name__)


@dataclass
class Run:
    name: str
    path: Path
    manifest: dict
    rounds: pd.DataFrame
    transfers: pd.DataFrame
    contacts: pd.DataFrame
    power: pd.DataFrame | None
    tracks: pd.DataFrame | None
    stations: pd.DataFrame | None
    colour: tuple | str = (0.0, 0.0, 0.0)
    clients: pd.DataFrame | None = None
    cue: Cue = field(default_factory=lambda: cue(0))  # marker, line style, hatch beside colour
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def evaluated(self) -> pd.DataFrame:
        return self.rounds[self.rounds["accuracy"].notna()]

    @property
    def total_bytes(self) -> pd.Series:
        return (self.rounds["bytes_up"] + self.rounds["bytes_down"]) / MB

    @property
    def energy_kj(self) -> pd.Series:
        """Cumulative training and radio energy (older runs without it: NaN)."""
        energy = self.rounds["energy_j"] if "energy_j" in self.rounds else np.nan
        return pd.Series(energy, index=self.rounds.index, dtype=float) / 1e3


def derived(run: Run, name: str, tables: tuple[str, ...], compute):
    """``compute(run)``, worked out once for the run's current ``tables`` (the static
    figures and the dashboard both need it; at constellation scale it is not cheap) and
    again only when one of those tables is replaced by another object."""
    inputs = tuple(getattr(run, table) for table in tables)
    known = run._derived.get(name)
    if known is None or any(a is not b for a, b in zip(known[0], inputs)):
        known = run._derived[name] = (inputs, compute(run))
    return known[1]


# The columns the report reads; a table with rows but without them is not orbitfl's.
COLUMNS = {
    "rounds": ("sim_time_s", "accuracy", "few_shot_accuracy", "per_class_accuracy",
               "bytes_up", "bytes_down"),
    "transfers": ("kind", "bytes", "src", "dst", "status"),
    "contacts": ("satellite", "station", "start_s", "duration_s"),
    "power": ("satellite", "t_s", "soc"),
    "tracks": ("satellite", "lat_deg", "lon_deg"),
    "stations": ("id", "lat_deg", "lon_deg"),
    "clients": ("job", "selected_s", "payload_received_s", "training_s",
                "update_delivered_s", "aggregated"),
}
SUMMARY = ("rounds_completed", "final_accuracy")


def load_run(path: Path) -> Run:
    """A run directory's tables, or a one-line ``RunDirectoryError`` naming what is wrong
    (missing, damaged or foreign files), before any figure is drawn."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"{path}: not a run directory (" +
                                ("not a folder)" if path.exists() else "no such folder)"))
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise RunDirectoryError(f"{path}: not a complete run directory (missing "
                                f"{', '.join(missing)})")
    manifest = _manifest(path)
    tables = {name: _table(path, name) for name in COLUMNS
              if name in ("rounds", "transfers", "contacts") or
              (path / f"{name}.parquet").is_file()}
    scenario = manifest.get("scenario")
    name = scenario.get("name") if isinstance(scenario, dict) else None
    return Run(name if isinstance(name, str) and name else path.name, path, manifest,
               **{"power": None, "tracks": None, "stations": None, "clients": None,
                  **tables})


def _manifest(path: Path) -> dict:
    try:  # bounded depth, UTF-8, a size cap: one line for any reader error
        manifest = read_json_file(path / "manifest.json", "run manifest")
    except InputError as err:
        problem = str(err).removeprefix(str(path / "manifest.json"))
        raise RunDirectoryError(f"{path}: manifest.json{problem[:120]}") from None
    return check_manifest(path, manifest)


def _table(path: Path, name: str) -> pd.DataFrame:
    return read_table(path, f"{name}.parquet", COLUMNS[name])


def unique_names(runs: list[Run]) -> None:
    """Runs of the same scenario get their folder name appended, so traces stay apart."""
    counts = pd.Series([r.name for r in runs]).value_counts()
    for run in runs:
        if counts[run.name] > 1:
            run.name = f"{run.name} ({run.path.name})"


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
    runs = [load_run(p) for p in run_dirs]
    unique_names(runs)
    looks = run_cues([r.name for r in runs])
    for run in runs:
        run.cue = looks[run.name]
        run.colour = run.cue.colour
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    from .dashboard import write_dashboard

    steps, started = len(VIEWS) + 1, time.perf_counter()
    logger.info(f"report: drawing {len(VIEWS)} figures ({', '.join(formats)})")
    # the mission's objects (orbitfl/gc_freeze.py)
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
    return _marked(out, [r.path for r in runs], written)


def write_sweep_report(sweep_dir: Path, out: Path, formats: tuple[str, ...] = ("png",),
                       style: str = "screen", **options) -> list[Path]:
    """``orbitfl report SWEEP_DIR``: the sweep's study report (``sweep_report``), drawn in
    ``style``."""
    from .sweep_report import write_sweep_report as write

    resolve(style)
    with figure_style(style):
        return write(sweep_dir, out, formats, **options)


def _marked(out: Path, sources: list[Path], written: list[Path]) -> list[Path]:
    """``written`` plus the ``MARKER`` file that lists it (what a later report may replace)."""
    return written + [atomic_write_text(out / MARKER, json.dumps(
        {"runs": [str(p) for p in sources],
         "files": sorted(p.name for p in written if p.parent == out)}, indent=1))]


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier report (so writing into it loses nothing else)."""
    return (Path(folder) / MARKER).is_file()


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


def _accuracy_view(x_of, xlabel: str, target_x, columns=ACCURACIES):
    """Accuracy panels (one per metric) against ``x_of(run)``, runs in their colours; on
    the overall panel a star at each time-to-target threshold the run reached."""
    def draw(runs: list[Run]):
        fig, axes = _panels(len(columns), cols=2 if len(columns) == 4 else 3)
        for ax, (column, label) in zip(axes, columns):
            for run in runs:
                rows = run.rounds["accuracy"].notna() & run.rounds.get(column, pd.Series(
                    dtype=float)).reindex(run.rounds.index).notna()
                if not rows.any():  # a metric this run did not measure: no empty trace
                    continue
                ax.plot(np.asarray(x_of(run))[rows], 100 * run.rounds.loc[rows, column],
                        marker=run.cue.marker, ms=3, color=run.colour,
                        label=literal(run.name))
                if column == "accuracy":
                    _targets(ax, run, target_x)
            ax.set(xlabel=xlabel, ylabel=f"{label} accuracy (%)", ylim=(0, 100))
            ax.grid(alpha=0.3)
            _legend_or_note(ax, runs, f"no {label} accuracy evaluated", legend=False)
        _figure_legend(fig, axes)  # one legend: the runs' looks are shared
        return fig
    return draw


def _targets(ax, run: Run, target_x) -> None:
    """Time-to-target markers from the manifest (thresholds never reached are absent)."""
    reached = run.manifest.get("time_to_target") or {}
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


def bytes_by_kind(run: Run) -> pd.DataFrame:
    """Delivered wire bytes per payload kind and direction (ground hops only)."""
    t = run.transfers
    ground = t[(t["status"] == "delivered") & ((t["src"] == "ground") | (t["dst"] == "ground"))] \
        if len(t) else t
    if ground.empty:  # (an empty table may even lack its columns)
        return pd.DataFrame(columns=["down", "up"], dtype="int64")
    direction = np.where(ground["src"] == "ground", "up", "down")
    return ground.assign(direction=direction).groupby(["kind", "direction"])["bytes"].sum() \
        .unstack(fill_value=0).reindex(columns=["down", "up"], fill_value=0)


def _unit(largest: float) -> tuple[float, str]:
    """A byte unit in which ``largest`` reads as a number people can compare."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if largest >= scale:
            return scale, unit
    return 1.0, "bytes"


def _bytes_by_kind(runs: list[Run]):
    """Delivered bytes per payload kind as horizontal bars, one per run (kinds named on the
    axis: long names never collide), uplink and downlink apart, each run's total on top.
    A kind that moved nothing in a direction is not listed there; the axis is logarithmic
    when the bars span more than two decades (control messages beside model weights)."""
    tables = [bytes_by_kind(run) for run in runs]
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


def _cumulative_bytes(runs: list[Run]):
    """Cumulative delivered bytes by kind against simulated time, uplink and downlink
    apart (rounds.parquet's ``bytes_<up|down>_<kind>`` columns): runs by colour and marker,
    kinds by line style (each kind its own, the same in both panels); kinds that moved
    nothing are left out; a log axis when the curves span more than two decades."""
    kinds = sorted({c.split("_", 2)[2] for run in runs for c in run.rounds.columns
                    if c.startswith(("bytes_up_", "bytes_down_"))})
    dashes = {kind: cue(i).linestyle for i, kind in enumerate(kinds)}
    fig, axes = _panels(2, cols=2)
    drawn: dict = {}
    for ax, direction in zip(axes, ("up", "down")):
        prefix, peaks = f"bytes_{direction}_", []
        for run in runs:
            for kind in kinds:
                values = run.rounds.get(prefix + kind)
                if values is None or not (values > 0).any():
                    continue
                ax.step(run.rounds["sim_time_s"] / 3600, values.where(values > 0) / MB,
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


def _runs_and_kinds_legend(fig, runs: list[Run], dashes: dict) -> None:
    """One legend below the panels: the runs (colour and marker), then the payload kinds
    (line style, in grey), rather than an entry per run and kind."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=r.colour, marker=r.cue.marker, ms=3,
                      label=literal(r.name, 30)) for r in runs]
    handles += [Line2D([], [], color="0.2", ls=ls, label=literal(kind))
                for kind, ls in sorted(dashes.items())]
    fig.legend(handles=handles, loc="outside lower center", handlelength=3.5,
               ncols=min(4, len(handles)))


def pass_utilisation(run: Run) -> pd.DataFrame:
    """Per contact window and direction: its capacity (contacts.parquet) and the wire bytes
    moved in it (each transfer's ``bytes_per_pass``, matched in order to the windows of its
    satellite at the stations in ``via`` that overlap the transfer), and the share of the
    window's time those bytes take at its mean rate. Computed once per run and tables (the
    static figure and the dashboard share it): treat the frame as read-only."""
    return derived(run, "pass_utilisation", ("contacts", "transfers"), _pass_utilisation)


def _pass_utilisation(run: Run) -> pd.DataFrame:
    c = run.contacts
    if not len(c) or "downlink_bytes" not in c:
        return pd.DataFrame(columns=["satellite", "station", "start_s", "direction",
                                     "capacity", "moved", "time_share"])
    moved = {"down": np.zeros(len(c)), "up": np.zeros(len(c))}
    windows = _windows_by_pair(c)
    t = run.transfers
    ground = t[(t["src"] == "ground") | (t["dst"] == "ground")] if len(t) else t
    columns = ("src", "dst", "start_s", "end_s", "via", "bytes_per_pass")
    for src, dst, start, end, via, per_pass in zip(*(
            ground[k].tolist() if len(ground) else [] for k in columns)):
        up = src == "ground"
        satellite = dst if up else src
        if per_pass is None or start != start:  # (a NaN start overlaps no window)
            continue
        end = end if end == end else np.inf
        into, after = moved["up" if up else "down"], -np.inf
        for station, nbytes in zip(via, per_pass):
            hit = _first_window(windows.get((satellite, station)), start, end, after)
            if hit is not None:
                into[hit[0]] += float(nbytes)
                after = hit[1]
    rows = []
    for direction, column in (("down", "downlink_bytes"), ("up", "uplink_bytes")):
        frame = c[["satellite", "station", "start_s"]].assign(
            direction=direction, capacity=c[column].astype(float), moved=moved[direction])
        rows.append(frame)
    table = pd.concat(rows, ignore_index=True)
    return table.assign(time_share=(table["moved"] / table["capacity"].where(
        table["capacity"] > 0)).clip(upper=1.0))


def _windows_by_pair(c: pd.DataFrame) -> dict[tuple, tuple[list, list, list, list]]:
    """Each (satellite, station)'s contact windows in start order (ties in table order):
    their starts, ends, the running maximum of the ends, and their row positions."""
    starts, ends = c["start_s"].to_numpy(float), c["end_s"].to_numpy(float)
    usable = ~(np.isnan(starts) | np.isnan(ends))  # (a NaN bound overlaps nothing)
    kept = np.flatnonzero(usable)
    pairs = {}
    for key, rows in c.iloc[kept].groupby(["satellite", "station"], sort=False).indices.items():
        rows = kept[rows]
        rows = rows[np.argsort(starts[rows], kind="stable")]
        pairs[key] = (starts[rows].tolist(), ends[rows].tolist(),
                      np.maximum.accumulate(ends[rows]).tolist(), rows.tolist())
    return pairs


def _first_window(pair, start: float, end: float, after: float) -> tuple[int, float] | None:
    """(row, start) of the first of a pair's windows, in start order, that begins after
    ``after`` and overlaps (``start``, ``end``), or None."""
    if pair is None:
        return None
    starts, ends, reach, rows = pair
    # windows before the first whose running end passes ``start`` all end by ``start``
    k = max(bisect_right(starts, after), bisect_right(reach, start))
    while k < len(starts) and starts[k] < end:
        if ends[k] > start:
            return rows[k], starts[k]
        k += 1
    return None


def _link_utilisation(runs: list[Run]):
    """Per pass, capacity against bytes moved (each direction) on log axes (capacities span
    decades, and most passes of a downlink move little); passes that moved nothing are
    ticks along the bottom. Then the distribution of the share of contact time used."""
    fig, axes = _panels(3, cols=3)
    tables = {run.name: pass_utilisation(run) for run in runs}
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


def _worst_satellites(runs: list[Run]) -> list[str]:
    """Satellites ordered worst-off first (lowest state of charge in any run), at most
    ``MAX_PANELS``."""
    lowest = [derived(r, "lowest_soc", ("power",), _lowest_soc) for r in runs
              if r.power is not None and len(r.power)]
    if not lowest:
        return []
    lowest = pd.concat(lowest).groupby(level=0).min().sort_values(kind="stable")
    return list(lowest.index[:MAX_PANELS])


def _lowest_soc(run: Run) -> pd.Series:
    """Each satellite's lowest state of charge in the run (by satellite name)."""
    return run.power.groupby("satellite")["soc"].min()


def _battery(runs: list[Run]):
    """State of charge, one panel per satellite (worst-off first), every run overlaid."""
    satellites = _worst_satellites(runs)
    fig, axes = _panels(max(1, len(satellites)), cols=4, aspect=0.66)
    for ax, satellite in zip(axes, satellites):
        for run in runs:
            if run.power is not None and len(run.power):
                trace = run.power[run.power["satellite"] == satellite]
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


def energy_per_satellite(run: Run) -> pd.DataFrame:
    """Each satellite's energy books at its last sample: training and radios (mission),
    the rest of the bus, solar wasted by a full battery and demand left unserved (kJ).
    Worked out once per run (figure and dashboard): treat the frame as read-only."""
    return derived(run, "energy_per_satellite", ("power",), _energy_per_satellite)


def _energy_per_satellite(run: Run) -> pd.DataFrame:
    if run.power is None or not len(run.power) or "supplied_j" not in run.power:
        return pd.DataFrame(columns=["mission", "bus", "wasted", "unserved"])
    last = run.power.sort_values("t_s", kind="stable").groupby("satellite").last()
    return pd.DataFrame({"mission": last["mission_j"],
                         "bus": last["supplied_j"] - last["mission_j"],
                         "wasted": last["wasted_j"], "unserved": last["unserved_j"]}) / 1e3


def _energy(runs: list[Run]):
    """Energy per satellite, runs side by side (worst-off satellites first)."""
    satellites = _worst_satellites(runs)
    fig, axes = _panels(4, cols=2)
    width = 0.8 / len(runs)
    tables = [energy_per_satellite(run).reindex(satellites).fillna(0.0) for run in runs]
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


FACTORS = ("waiting for a contact", "transfer", "battery", "training", "no update in time")
# Okabe-Ito colours (grey for the neutral wait) and hatches: apart without colour too.
FACTOR_COLOURS = dict(zip(FACTORS, ("#999999", *PALETTE[:4])))
FACTOR_HATCHES = dict(zip(FACTORS, HATCHES))


def _measure(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of intervals."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _on_air(run: Run, transfers: pd.DataFrame, satellite: str, lo: float,
            hi: float) -> float:
    """Seconds within [lo, hi] in which one of ``transfers`` was on the air: each transfer
    from its first byte to its last, counted only inside its satellite's contact windows
    with the stations it used (between two passes it waits, it does not send)."""
    c = run.contacts
    windows = c[c["satellite"] == satellite] if len(c) else c
    spans = []
    for _, t in transfers.iterrows():
        if pd.isna(t["start_s"]) or pd.isna(t["end_s"]):
            continue
        start, end = max(t["start_s"], lo), min(t["end_s"], hi)
        mine = windows[windows["station"].isin(list(t["via"]))] if len(windows) else windows
        spans += [(max(start, w0), min(end, w1)) for w0, w1 in
                  zip(mine.get("start_s", []), mine.get("end_s", [])) if w0 < end and w1 > start]
    return _measure(spans)


def round_breakdown(run: Run) -> pd.DataFrame:
    """Where each round's simulated time went (seconds, columns ``FACTORS``), along the
    update that closed it: the last aggregated update delivered by the round's close. Its
    job's uplink and downlink split into time on the air (``transfer``) and the rest
    (``waiting for a contact``); between the payload's arrival and the update's queueing,
    the onboard compute time is ``training`` and the rest is ``battery`` (training waits
    for charge). A round that no update closed is all ``no update in time``. Runs without
    clients.parquet or job ids give an empty table. Worked out once per run (figure and
    dashboard): treat the frame as read-only."""
    return derived(run, "round_breakdown", ("clients", "transfers", "rounds", "contacts"),
                   _round_breakdown)


def _round_breakdown(run: Run) -> pd.DataFrame:
    empty = pd.DataFrame(columns=FACTORS, dtype=float)
    c, t = run.clients, run.transfers
    if c is None or not len(c) or "job" not in t or "opened_s" not in run.rounds:
        return empty
    done = c[c["aggregated"] & c["update_delivered_s"].notna()]
    rows = {}
    for _, r in run.rounds[run.rounds["round"] > 0].iterrows():
        lo, hi = float(r["opened_s"]), float(r["sim_time_s"])
        row = dict.fromkeys(FACTORS, 0.0)
        closing = done[(done["update_delivered_s"] <= hi + 1e-6) &
                       (done["update_delivered_s"] > lo)]
        if not len(closing):
            row["no update in time"] = hi - lo
            rows[int(r["round"])] = row
            continue
        job = closing.loc[closing["update_delivered_s"].idxmax()]
        mine = t[t["job"] == job["job"]]
        up, down = mine[mine["src"] == "ground"], mine[mine["dst"] == "ground"]
        received = float(job["payload_received_s"])
        queued = float(down["requested_s"].min()) if len(down) else received
        row["training"] = min(float(job["training_s"] or 0.0), max(0.0, queued - received))
        row["battery"] = max(0.0, queued - received - row["training"])
        row["transfer"] = _on_air(run, up, job["satellite"], lo, received) + \
            _on_air(run, down, job["satellite"], queued, hi)
        row["waiting for a contact"] = max(0.0, hi - lo - sum(row.values()))
        rows[int(r["round"])] = row
    if not rows:
        return empty
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(FACTORS))
    return table.where(table > 1e-6, 0.0)  # float dust from the subtractions


def _breakdown_panel(ax, run: Run) -> None:
    """One run's rounds as horizontal stacked bars of the factors, in hours."""
    table = round_breakdown(run) / 3600
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


def _per_class(runs: list[Run]):
    """Final per-class accuracy as grouped bars, one colour per run, classes named."""
    finals = {run.name: np.asarray(run.evaluated.iloc[-1]["per_class_accuracy"], dtype=float)
              for run in runs if len(run.evaluated)}
    classes = max((len(v) for v in finals.values()), default=0)
    named = next((run for run in runs if len(finals.get(run.name, ())) == classes), runs[0])
    names = class_names(named.manifest, classes)
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
    def view(runs: list[Run]):
        style = current_style()
        need = sum(style.rows_height(rows(run), extra=0.6) for run in runs)
        fig, axes = _panels(len(runs), cols=1, aspect=aspect, wide=True, min_height=need)
        for ax, run in zip(axes, runs):
            draw(ax, run)
        return fig
    return view


def _gantt_panel(ax, run: Run) -> None:
    draw_gantt(ax, run.contacts, title=f"contact windows: {literal(run.name)}")
    ax.title.set_color(run.colour)


def _tracks_panel(ax, run: Run) -> None:
    if run.tracks is None or run.stations is None:
        empty_note(ax, f"no ground tracks recorded in {literal(run.name)}")
        ax.set_title(literal(run.name), color=run.colour)
        return
    scenario = run.manifest.get("scenario")
    epoch = scenario.get("epoch") if isinstance(scenario, dict) else None
    draw_tracks(ax, run.tracks, run.stations, title=f"ground tracks: {literal(run.name)}",
                epoch=epoch if isinstance(epoch, str) else None)
    ax.title.set_color(run.colour)


VIEWS = {
    "accuracy_vs_bytes": _accuracy_view(
        lambda r: r.total_bytes, "cumulative bytes moved, up + down (MB)",
        lambda hit: (hit["bytes_up"] + hit["bytes_down"]) / MB),
    "accuracy_vs_time": _accuracy_view(
        lambda r: r.rounds["sim_time_s"] / 3600, "simulated time (h)",
        lambda hit: hit["sim_time_s"] / 3600),
    "accuracy_vs_energy": _accuracy_view(
        lambda r: r.energy_kj, "cumulative training + radio energy (kJ)",
        lambda hit: hit["energy_j"] / 1e3),
    "few_shot_accuracy": _accuracy_view(
        lambda r: r.total_bytes, "cumulative bytes moved, up + down (MB)",
        lambda hit: (hit["bytes_up"] + hit["bytes_down"]) / MB, SHOTS),
    "bytes_by_kind": _bytes_by_kind,
    "bytes_vs_time": _cumulative_bytes,
    "link_utilisation": _link_utilisation,
    "per_class_accuracy": _per_class,
    "battery": _battery,
    "energy_per_satellite": _energy,
    "round_breakdown": _per_run(_breakdown_panel, 0.3, lambda run: len(run.rounds)),
    "contact_gantt": _per_run(_gantt_panel, 0.26, lambda run: gantt_rows(
        run.contacts, current_style().width(wide=True))),
    "ground_tracks": _per_run(_tracks_panel, 0.52),
}
