"""``orbitfl report``: figures and an offline dashboard from one or more run directories.

Analysis reads only run directories (the parquet tables and ``manifest.json``), so reports
can be made long after the runs, on another machine.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from orbitfl.atomic import atomic_write_text  # noqa: E402
from orbitfl.errors import InputError  # noqa: E402
from orbitfl.gc_freeze import older_objects_frozen  # noqa: E402
from orbitfl.user_json import read_json_file  # noqa: E402

from .figures import (  # noqa: E402
    class_names,
    draw_gantt,
    draw_tracks,
    empty_note,
    literal,
    run_colours,
    save_formats,
)
from .rundir_check import RunDirectoryError, check_manifest, read_table  # noqa: E402

MB = 1e6
REQUIRED = ("manifest.json", "rounds.parquet", "transfers.parquet", "contacts.parquet")
MARKER = "orbitfl-report.json"  # marks a folder as a report that may be written over
MAX_PANELS = 12
ACCURACIES = (("accuracy", "overall"), ("balanced_accuracy", "balanced"),
              ("few_shot_accuracy", "few-shot"), ("personalised_accuracy", "personalised"))
SHOTS = (("many_shot_accuracy", "many-shot"), ("medium_shot_accuracy", "medium-shot"),
         ("few_shot_accuracy", "few-shot"))


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
    colour: tuple = (0.0, 0.0, 0.0)
    clients: pd.DataFrame | None = None
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
                 formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Every view in each of ``formats`` into ``out``, ``dashboard.html`` (into ``out``
    unless ``dashboard``) and the ``MARKER`` file listing what was written."""
    runs = [load_run(p) for p in run_dirs]
    unique_names(runs)
    colours = run_colours([r.name for r in runs])
    for run in runs:
        run.colour = colours[run.name]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    from .dashboard import write_dashboard

    with older_objects_frozen():  # the mission's objects (orbitfl/gc_freeze.py)
        for name, view in VIEWS.items():
            written += save_formats(view(runs), out / name, formats)
        written.append(write_dashboard(runs, dashboard or out / "dashboard.html"))
    return _marked(out, [r.path for r in runs], written)


def write_sweep_report(sweep_dir: Path, out: Path,
                       formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """A sweep folder's report (``orbitfl report SWEEP_DIR``): the Pareto figure in each
    format and the interactive sweep page, coloured by any swept parameter."""
    from .dashboard import swept_parameters, write_sweep_dashboard
    from .pareto import pareto_figure

    try:
        table = pd.read_parquet(Path(sweep_dir) / "sweep.parquet")
        parameters = swept_parameters(table)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise RunDirectoryError(f"{sweep_dir}: sweep.parquet cannot be read as a sweep "
                                f"table ({type(err).__name__})") from None
    out.mkdir(parents=True, exist_ok=True)
    written = [pareto_figure(table, out / f"pareto.{fmt}", parameters) for fmt in formats]
    written.append(write_sweep_dashboard(table, out / "dashboard.html"))
    return _marked(out, [Path(sweep_dir)], written)


def _marked(out: Path, sources: list[Path], written: list[Path]) -> list[Path]:
    """``written`` plus the ``MARKER`` file that lists it (what a later report may replace)."""
    return written + [atomic_write_text(out / MARKER, json.dumps(
        {"runs": [str(p) for p in sources],
         "files": sorted(p.name for p in written if p.parent == out)}, indent=1))]


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier report (so writing into it loses nothing else)."""
    return (Path(folder) / MARKER).is_file()


def _panels(count: int, width: float = 4.2, height: float = 3.0, cols: int = 3):
    """A grid of ``count`` panels (small multiples), axes flattened, spare ones hidden."""
    cols = max(1, min(cols, count))
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.4),
                             layout="constrained", squeeze=False)
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
                        marker="o", ms=3, color=run.colour, label=literal(run.name))
                if column == "accuracy":
                    _targets(ax, run, target_x)
            ax.set(xlabel=xlabel, ylabel=f"{label} accuracy (%)", ylim=(0, 100))
            ax.grid(alpha=0.3)
            _legend_or_note(ax, runs, f"no {label} accuracy evaluated",
                            legend=ax is axes[0])  # one legend: the colours are shared
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
                        xytext=(4, -8), textcoords="offset points", fontsize=6)


def _legend_or_note(ax, runs, why: str, legend: bool = True) -> None:
    """A legend when something was drawn; otherwise say on the figure why it is empty."""
    if ax.has_data():
        if legend:
            ax.legend(fontsize=7)
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
    """Stacked bars per run, uplink and downlink apart, on a linear axis; every segment
    is labelled with its size so that a small payload kind stays visible."""
    tables = [bytes_by_kind(run) for run in runs]
    kinds = sorted({k for table in tables for k in table.index})
    kind_colour = {k: plt.cm.Set2(i % 8) for i, k in enumerate(kinds)}
    fig, axes = _panels(2, width=max(4.2, 1.2 * len(runs) + 2))
    for ax, direction in zip(axes, ("up", "down")):
        totals = [table.get(direction, pd.Series(dtype=float)).sum() for table in tables]
        scale, unit = _unit(max(totals, default=0))
        bottom = np.zeros(len(runs))
        for kind in kinds:
            values = np.array([table[direction].get(kind, 0) if direction in table else 0
                               for table in tables], dtype=float) / scale
            bars = ax.bar(range(len(runs)), values, 0.6, bottom=bottom, label=kind,
                          color=kind_colour[kind])
            ax.bar_label(bars, [f"{kind} {v:.3g}" if v else "" for v in values],
                         label_type="center", fontsize=6)
            bottom += values
        ax.set_xticks(range(len(runs)), [literal(r.name, 24) for r in runs], rotation=15)
        for tick, run in zip(ax.get_xticklabels(), runs):
            tick.set_color(run.colour)
        ax.set_ylabel(f"{unit} delivered")
        ax.set_title("ground to satellites (up)" if direction == "up"
                     else "satellites to ground (down)")
        if kinds:
            ax.legend(fontsize=7, title="payload")
        else:
            empty_note(ax, "no payload delivered")
    return fig


def _cumulative_bytes(runs: list[Run]):
    """Cumulative delivered bytes by kind against simulated time, uplink and downlink
    apart (rounds.parquet's ``bytes_<up|down>_<kind>`` columns)."""
    fig, axes = _panels(2, width=5.0)
    styles = ("-", "--", ":", "-.")
    for ax, direction in zip(axes, ("up", "down")):
        prefix = f"bytes_{direction}_"
        for run in runs:
            kinds = sorted(c[len(prefix):] for c in run.rounds.columns if c.startswith(prefix))
            for i, kind in enumerate(kinds):
                ax.step(run.rounds["sim_time_s"] / 3600, run.rounds[prefix + kind] / MB,
                        where="post", ls=styles[i % len(styles)], color=run.colour,
                        label=f"{literal(run.name, 30)}: {kind}")
        ax.set(xlabel="simulated time (h)", ylabel="cumulative MB delivered",
               title=f"{'up (ground to satellites)' if direction == 'up' else 'down'}")
        ax.grid(alpha=0.3)
        _legend_or_note(ax, runs, "no payload delivered")
    return fig


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
    """Per pass, capacity against bytes moved (each direction), and the distribution of
    the share of contact time used."""
    fig, axes = _panels(3, width=4.4)
    tables = {run.name: pass_utilisation(run) for run in runs}
    for ax, direction in zip(axes, ("down", "up")):
        for run in runs:
            mine = tables[run.name][tables[run.name]["direction"] == direction]
            ax.scatter(mine["capacity"] / MB, mine["moved"] / MB, s=10, color=run.colour,
                       alpha=0.7, label=literal(run.name))
        if ax.has_data():
            top = max(ax.get_xlim()[1], ax.get_ylim()[1])
            ax.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--", label="full pass")
        ax.set(xlabel="pass capacity (MB)", ylabel="MB moved in the pass",
               title=f"{direction}link, per pass")
        ax.grid(alpha=0.3)
        _legend_or_note(ax, runs, "no contact window")
    ax = axes[2]
    for run in runs:
        share = np.sort(tables[run.name]["time_share"].dropna().to_numpy())
        if len(share):
            ax.step(100 * share, np.arange(1, len(share) + 1) / len(share), where="post",
                    color=run.colour, label=literal(run.name))
    ax.set(xlabel="share of the pass's contact time used (%)", ylabel="fraction of passes",
           xlim=(0, 100), ylim=(0, 1.02), title="contact time used (both directions)")
    ax.grid(alpha=0.3)
    _legend_or_note(ax, runs, "no contact window")
    return fig


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
    fig, axes = _panels(max(1, len(satellites)), width=3.6, height=2.4, cols=4)
    for ax, satellite in zip(axes, satellites):
        for run in runs:
            if run.power is not None and len(run.power):
                trace = run.power[run.power["satellite"] == satellite]
                ax.plot(trace["t_s"] / 3600, 100 * trace["soc"], lw=0.8, color=run.colour,
                        label=literal(run.name))
        ax.set(ylim=(0, 100), title=literal(satellite), xlabel="simulated time (h)",
               ylabel="state of charge (%)")
        ax.grid(alpha=0.3)
    if satellites:
        axes[0].legend(fontsize=6)
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
    fig, axes = _panels(4, width=max(4.5, 0.5 * len(satellites) * len(runs) + 2), cols=2)
    width = 0.8 / len(runs)
    tables = [energy_per_satellite(run).reindex(satellites).fillna(0.0) for run in runs]
    for ax, (column, ylabel) in zip(axes, ENERGY_BOOKS):
        for i, (run, table) in enumerate(zip(runs, tables)):
            ax.bar(np.arange(len(satellites)) + i * width, table[column], width,
                   color=run.colour, label=literal(run.name, 30))
        ax.set_xticks(np.arange(len(satellites)) + 0.4 - width / 2,
                      [literal(s, 20) for s in satellites], rotation=30, fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
        _legend_or_note(ax, runs, "no battery trace")
    return fig


FACTORS = ("waiting for a contact", "transfer", "battery", "training", "no update in time")
FACTOR_COLOURS = dict(zip(FACTORS, ("#bab0ac", "#4e79a7", "#f28e2b", "#59a14f", "#e15759")))


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
                    label=factor, height=0.7)
            left += table[factor].to_numpy()
    ax.set(xlabel="hours of the round", ylabel="round")
    ax.set_title(f"what each round waited for: {literal(run.name)}", color=run.colour)
    ax.invert_yaxis()
    ax.grid(alpha=0.3, axis="x")
    if len(table):
        ax.set_yticks(table.index)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
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
    fig, ax = plt.subplots(figsize=(max(6.8, 0.5 * classes * max(1, len(finals)) + 2), 4.2),
                           layout="constrained")
    width = 0.8 / max(1, len(finals))
    for i, run in enumerate(r for r in runs if r.name in finals):
        values = finals[run.name]
        ax.bar(np.arange(len(values)) + i * width, 100 * values, width, color=run.colour,
               label=literal(run.name))
    ax.set_xticks(np.arange(classes) + 0.4 - width / 2, names,
                  rotation=30 if classes > 6 else 0, ha="right" if classes > 6 else "center")
    ax.set(ylabel="final per-class accuracy (%)", ylim=(0, 100))
    ax.grid(alpha=0.3, axis="y")
    _legend_or_note(ax, runs, "no evaluated round")
    return fig


def _per_run(draw, width: float, height: float):
    """One panel per run (small multiples) for views that cannot overlay runs."""
    def view(runs: list[Run]):
        fig, axes = _panels(len(runs), width=width, height=height, cols=1)
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
    draw_tracks(ax, run.tracks, run.stations, title=f"ground tracks: {literal(run.name)}")
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
    "round_breakdown": _per_run(_breakdown_panel, 8, 2.8),
    "contact_gantt": _per_run(_gantt_panel, 10, 2.6),
    "ground_tracks": _per_run(_tracks_panel, 10, 5.2),
}
