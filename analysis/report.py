"""``orbitfl report``: figures and an offline dashboard from one or more run directories.

Analysis reads only run directories (the parquet tables and ``manifest.json``), so reports
can be made long after the runs, on another machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from .figures import (  # noqa: E402
    contact_gantt,
    empty_note,
    ground_tracks,
    literal,
    save_figure,
)

MB = 1e6
REQUIRED = ("manifest.json", "rounds.parquet", "transfers.parquet", "contacts.parquet")


class RunDirectoryError(ValueError):
    """A folder that is not a complete run directory."""


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

    @property
    def evaluated(self) -> pd.DataFrame:
        return self.rounds[self.rounds["accuracy"].notna()]

    @property
    def total_bytes(self) -> pd.Series:
        return (self.rounds["bytes_up"] + self.rounds["bytes_down"]) / MB


# The columns the report reads; a table with rows but without them is not orbitfl's.
COLUMNS = {
    "rounds": ("sim_time_s", "accuracy", "few_shot_accuracy", "per_class_accuracy",
               "bytes_up", "bytes_down"),
    "transfers": ("kind", "bytes", "src", "dst", "status"),
    "contacts": ("satellite", "station", "start_s", "duration_s"),
    "power": ("satellite", "t_s", "soc"),
    "tracks": ("satellite", "lat_deg", "lon_deg"),
    "stations": ("id", "lat_deg", "lon_deg"),
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
               **{"power": None, "tracks": None, "stations": None, **tables})


def _manifest(path: Path) -> dict:
    file = path / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
        raise RunDirectoryError(f"{path}: manifest.json is not readable JSON "
                                f"({str(err).splitlines()[0][:100]})") from None
    summary = manifest.get("summary") if isinstance(manifest, dict) else None
    if not isinstance(summary, dict) or any(key not in summary for key in SUMMARY):
        raise RunDirectoryError(f"{path}: manifest.json is not an orbitfl run manifest (no "
                                f"summary with {', '.join(SUMMARY)})")
    return manifest


def _table(path: Path, name: str) -> pd.DataFrame:
    file = path / f"{name}.parquet"
    try:
        table = pd.read_parquet(file)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise RunDirectoryError(f"{path}: {file.name} is not a readable parquet table "
                                f"({str(err).splitlines()[0][:100]})") from None
    absent = [c for c in COLUMNS[name] if c not in table.columns]
    if len(table) and absent:
        raise RunDirectoryError(f"{path}: {file.name} is not an orbitfl table (no "
                                f"{', '.join(absent)} column)")
    return table


def unique_names(runs: list[Run]) -> None:
    """Runs of the same scenario get their folder name appended, so traces stay apart."""
    counts = pd.Series([r.name for r in runs]).value_counts()
    for run in runs:
        if counts[run.name] > 1:
            run.name = f"{run.name} ({run.path.name})"


def write_report(run_dirs: list[Path], out: Path,
                 dashboard: Path | None = None) -> list[Path]:
    """PNG figures into ``out`` and ``dashboard.html`` (into ``out`` unless ``dashboard``)."""
    runs = [load_run(p) for p in run_dirs]
    unique_names(runs)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _lines(runs, out / "accuracy_vs_bytes.png", lambda r: r.total_bytes, "accuracy",
               "cumulative bytes moved, up + down (MB)", "top-1 accuracy (%)"),
        _lines(runs, out / "accuracy_vs_time.png", lambda r: r.rounds["sim_time_s"] / 3600,
               "accuracy", "simulated time (h)", "top-1 accuracy (%)"),
        _lines(runs, out / "few_shot_accuracy.png", lambda r: r.total_bytes,
               "few_shot_accuracy", "cumulative bytes moved (MB)", "few-shot accuracy (%)"),
        _bytes_by_kind(runs, out / "bytes_by_kind.png"),
        _per_class(runs, out / "per_class_accuracy.png"),
        _battery(runs, out / "battery.png"),
        contact_gantt(runs[0].contacts, out / "contact_gantt.png"),
    ]
    if runs[0].tracks is not None and runs[0].stations is not None:
        written.append(ground_tracks(runs[0].tracks, runs[0].stations,
                                     out / "ground_tracks.png"))
    from .dashboard import write_dashboard

    written.append(write_dashboard(runs, dashboard or out / "dashboard.html"))
    return written


def _lines(runs, out, x_of, column, xlabel, ylabel) -> Path:
    fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
    for run in runs:
        rows = run.rounds["accuracy"].notna()
        ax.plot(np.asarray(x_of(run))[rows], 100 * run.rounds.loc[rows, column], marker="o",
                ms=3, label=literal(run.name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    _legend_or_note(ax, runs, "no evaluated round")
    return save_figure(fig, out)


def _legend_or_note(ax, runs, why: str) -> None:
    """A legend when something was drawn; otherwise say on the figure why it is empty."""
    if ax.has_data():
        ax.legend(fontsize=8)
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
        .unstack(fill_value=0)


def _bytes_by_kind(runs, out) -> Path:
    fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
    kinds = sorted({k for run in runs for k in bytes_by_kind(run).index})
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        table = bytes_by_kind(run).reindex(kinds, fill_value=0)
        total = table.sum(axis=1) / MB
        ax.bar(np.arange(len(kinds)) + i * width, total, width, label=literal(run.name))
    ax.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds, rotation=20)
    ax.set_ylabel("MB delivered (up + down)")
    ax.set_yscale("symlog")
    if kinds:
        ax.legend(fontsize=8)
    else:
        empty_note(ax, "no payload delivered")
    return save_figure(fig, out)


def _per_class(runs, out) -> Path:
    fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
    for run in (r for r in runs if len(r.evaluated)):
        last = run.evaluated.iloc[-1]
        per_class = np.asarray(last["per_class_accuracy"], dtype=float)
        ax.plot(np.arange(len(per_class)), 100 * per_class, marker="o",
                label=literal(run.name))
    ax.set_xlabel("class")
    ax.set_ylabel("final per-class accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    _legend_or_note(ax, runs, "no evaluated round")
    return save_figure(fig, out)


def _battery(runs, out) -> Path:
    fig, ax = plt.subplots(figsize=(6.8, 4.2), layout="constrained")
    power = runs[0].power
    if power is not None and len(power):
        for name, trace in list(power.groupby("satellite", sort=False))[:12]:
            ax.plot(trace["t_s"] / 3600, 100 * trace["soc"], lw=0.8, label=literal(name))
        ax.legend(fontsize=6, ncol=2)
    ax.set_xlabel("simulated time (h)")
    ax.set_ylabel("battery state of charge (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"battery traces ({literal(runs[0].name)})")
    return save_figure(fig, out)
