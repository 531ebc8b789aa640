"""Figures drawn from a run directory's tables (analysis reads only run directories)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orbitfl.atomic import atomic_write  # noqa: E402

MAX_LABEL = 60


def literal(text: object, limit: int = MAX_LABEL) -> str:
    """A user's string (run, scenario, satellite or station name) as matplotlib should draw
    it: verbatim, never as mathtext ('$' escaped, an unbalanced one would crash the save),
    cut to ``limit`` characters so that one long name cannot collapse the layout, and never
    with the leading '_' that hides a legend entry."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    if text.startswith("_"):
        text = " " + text
    return text.replace("$", r"\$")


def contact_gantt(contacts: pd.DataFrame, out: Path, max_satellites: int = 40) -> Path:
    """One row per satellite, one bar per contact window, coloured by station."""
    satellites = list(dict.fromkeys(contacts["satellite"]))[:max_satellites]
    shown = contacts[contacts["satellite"].isin(satellites)]
    stations = sorted(shown["station"].unique())
    colours = {s: plt.cm.tab20(i % 20) for i, s in enumerate(stations)}
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(satellites) + 1.6), layout="constrained")
    for row, satellite in enumerate(satellites):
        mine = shown[shown["satellite"] == satellite]
        ax.broken_barh(list(zip(mine["start_s"] / 3600, mine["duration_s"] / 3600)),
                       (row - 0.4, 0.8), facecolors=[colours[s] for s in mine["station"]])
    ax.set_yticks(range(len(satellites)), [literal(s) for s in satellites], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("hours since scenario epoch")
    if stations:
        ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in stations],
                  labels=[literal(s) for s in stations], loc="upper left",
                  bbox_to_anchor=(1.0, 1.0), fontsize=7, title="station")
    else:
        empty_note(ax, "no contact windows in the scenario's horizon")
    title = "contact windows"
    if contacts["satellite"].nunique() > max_satellites:
        title += f" (first {max_satellites} of {contacts['satellite'].nunique()} satellites)"
    ax.set_title(title)
    return save_figure(fig, out)


def ground_tracks(tracks: pd.DataFrame, stations: pd.DataFrame, out: Path) -> Path:
    """Sub-satellite points (``satellite, lat_deg, lon_deg``) and the stations."""
    fig, ax = plt.subplots(figsize=(10, 5.2), layout="constrained")
    for _, track in tracks.groupby("satellite", sort=False):
        lon = track["lon_deg"].to_numpy()
        # Break the line where it wraps around the antimeridian.
        breaks = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1
        for part in np.split(np.arange(len(lon)), breaks):
            ax.plot(lon[part], track["lat_deg"].to_numpy()[part], lw=0.6, alpha=0.7)
    ax.scatter(stations["lon_deg"], stations["lat_deg"], marker="^", c="k", s=40, zorder=3)
    for _, s in stations.iterrows():
        ax.annotate(literal(s["id"]), (s["lon_deg"], s["lat_deg"]), xytext=(3, 3),
                    textcoords="offset points", fontsize=7)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.grid(alpha=0.3)
    ax.set_title("ground tracks and stations")
    return save_figure(fig, out)


def empty_note(ax, text: str) -> None:
    """Say on the figure why it is empty, rather than leave a blank plot to be misread."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10,
            color="0.35")


def save_figure(fig, out: Path) -> Path:
    """Save (whole or not at all) and close the figure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, lambda partial: fig.savefig(partial, dpi=120,
                                                      format=out.suffix[1:] or "png"))
    finally:
        plt.close(fig)
    return out
