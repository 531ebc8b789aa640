"""Figures drawn from a run directory's tables (analysis reads only run directories)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from orbitfl.core.atomic import atomic_write  # noqa: E402
from orbitfl.core.landmask import MISSING, land_mask  # noqa: E402

from .labels import LabelPlacer  # noqa: E402
from .run_data import FACTORS  # noqa: E402
from .style import (  # noqa: E402
    FONTS,
    HATCHES,
    PALETTE,
    category_cue,
    cue,
    current_style,
    figure_style,
)

MAX_PANELS = 12  # small multiples drawn at most (worst-off first)
ACCURACIES = (("accuracy", "overall"), ("balanced_accuracy", "balanced"),
              ("few_shot_accuracy", "few-shot"), ("personalised_accuracy", "personalised"))
# Okabe-Ito colours (grey for the neutral wait) and hatches: apart without colour too.
FACTOR_COLOURS = dict(zip(FACTORS, ("#999999", *PALETTE[:4])))
FACTOR_HATCHES = dict(zip(FACTORS, HATCHES))

MAX_LABEL = 60
DPI = 200  # publication raster resolution; vector formats ignore it
FORMATS = ("png", "svg", "pdf")


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


def contact_gantt(contacts: pd.DataFrame, out: Path, max_satellites: int = 40,
                  style: str = "screen") -> Path:
    """One row per satellite, one bar per contact window, coloured (and, past eight
    stations, hatched) by station."""
    with figure_style(style):
        return save_figure(gantt_figure(contacts, max_satellites), out)


def gantt_figure(contacts: pd.DataFrame, max_satellites: int = 40):
    """The Gantt chart as a figure of the active style, tall enough for its rows and its
    station legend."""
    style = current_style()
    width = style.width(wide=True)
    fig, ax = plt.subplots(figsize=style.size(wide=True, aspect=0.3, min_height=style.rows_height(
        gantt_rows(contacts, width, max_satellites))), layout="constrained")
    draw_gantt(ax, contacts, max_satellites)
    return fig


def gantt_rows(contacts: pd.DataFrame, width_in: float, max_satellites: int = 40) -> int:
    """Lines of text a Gantt chart ``width_in`` wide needs: a row per satellite, and the
    station legend's rows and title below it."""
    if not len(contacts):
        return 0
    satellites = min(contacts["satellite"].nunique(), max_satellites)
    names = [literal(s) for s in contacts["station"].unique()]
    columns = _legend_columns(names, width_in)
    return satellites + 2 + -(-len(names) // columns) * 4 // 3  # legend rows are taller


def _legend_columns(names: list[str], width_in: float) -> int:
    """How many columns of ``names`` (with their swatches) fit across ``width_in``."""
    tiny = current_style().tiny
    column_pt = max(len(n) for n in names) * tiny * 0.62 + 3.5 * tiny
    return max(1, min(len(names), int(width_in * 72 * 0.9 // column_pt)))


def draw_gantt(ax, contacts: pd.DataFrame, max_satellites: int = 40,
               title: str = "contact windows") -> None:
    """The Gantt chart on ``ax`` (one panel of a multi-run figure, or a figure of its own)."""
    satellites = list(dict.fromkeys(contacts["satellite"]))[:max_satellites] \
        if len(contacts) else []
    shown = contacts[contacts["satellite"].isin(satellites)] if len(contacts) else contacts
    stations = sorted(shown["station"].unique()) if len(shown) else []
    looks = station_cues(stations)
    tiny = current_style().tiny
    for row, satellite in enumerate(satellites):
        mine = shown[shown["satellite"] == satellite]
        for station, windows in mine.groupby("station", sort=False):
            look = looks[station]  # one collection per hatch: a collection has one hatch
            ax.broken_barh(list(zip(windows["start_s"] / 3600, windows["duration_s"] / 3600)),
                           (row - 0.4, 0.8), facecolors=look.colour, hatch=look.hatch or None,
                           edgecolor="0.15" if look.hatch else "none", linewidth=0,
                           gid=f"gantt-{station}")
    ax.set_yticks(range(len(satellites)), [literal(s) for s in satellites], fontsize=tiny)
    ax.invert_yaxis()
    ax.set_xlabel("hours since scenario epoch")
    if stations:
        names = [literal(s) for s in stations]  # (cut names could collide: whole ones)
        # Below the chart, as many columns as the width holds: long names never squeeze it.
        ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, facecolor=looks[s].colour,
                                         hatch=looks[s].hatch or None, edgecolor="0.15",
                                         linewidth=0) for s in stations],
                  labels=names, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 2 * tiny / 72),
                  fontsize=tiny, title="station", title_fontsize=tiny,
                  ncols=_legend_columns(names, ax.figure.get_figwidth()))
    else:
        empty_note(ax, "no contact windows in the scenario's horizon")
    if len(contacts) and contacts["satellite"].nunique() > max_satellites:
        title += f" (first {max_satellites} of {contacts['satellite'].nunique()} satellites)"
    ax.set_title(title)


def station_cues(stations: list[str]) -> dict:
    """Each station's look in the Gantt chart (colour, then hatch once colours repeat)."""
    return {station: category_cue(i) for i, station in enumerate(stations)}


def ground_tracks(tracks: pd.DataFrame, stations: pd.DataFrame, out: Path,
                  epoch: datetime | str | None = None, style: str = "screen") -> Path:
    """Sub-satellite points (``satellite, lat_deg, lon_deg``, and ``t_s`` since ``epoch``
    for the time span in the title) and the stations."""
    with figure_style(style) as chosen:
        fig, ax = plt.subplots(figsize=chosen.size(wide=True, aspect=0.55),
                               layout="constrained")
        draw_tracks(ax, tracks, stations, epoch=epoch)
        return save_figure(fig, out)


def time_span(tracks: pd.DataFrame, epoch: datetime | str | None) -> str:
    """The UTC span a map draws (``t_s`` of its tracks after ``epoch``), e.g.
    ``2024-07-16 06:00 to 18:00 UTC``; hours after the epoch when the epoch is unknown."""
    if "t_s" not in tracks or not len(tracks):
        return ""
    first, last = float(tracks["t_s"].min()), float(tracks["t_s"].max())
    if epoch is None:
        return f"{first / 3600:.3g} h to {last / 3600:.3g} h after the epoch"
    start = pd.Timestamp(epoch)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    a, b = start + pd.Timedelta(seconds=first), start + pd.Timedelta(seconds=last)
    end = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%Y-%m-%d %H:%M}"
    return f"{a:%Y-%m-%d %H:%M} to {end} UTC"


LAND = "#e8e2d0"       # light fill of the land background
COAST = "0.45"         # coastline colour
LAND_CELL_DEG = 0.5    # resolution of the land/water grid behind a map


def land_outline(cell_deg: float = LAND_CELL_DEG):
    """(longitudes, latitudes, land as 0/1) of the land mask padded with a ring of water,
    so that every coastline contour is a closed ring (also at the map's edges); None when
    the MODIS land cover is not installed."""
    mask = land_mask(cell_deg)
    if mask is None:
        return None
    half = mask.cell_deg / 2
    lon = np.concatenate([[-180.0 - half], mask.lon_centres, [180.0 + half]])
    lat = np.concatenate([[90.0 + half], mask.lat_centres, [-90.0 - half]])
    return lon, lat, np.pad(mask.land.astype(float), 1)


def draw_land(ax) -> bool:
    """Land as a light fill with a contour coastline, from the MODIS land cover that ships
    offline (nothing is downloaded). Without it the map has no background and says so
    in its lower corner; returns whether the land was drawn."""
    outline = land_outline()
    if outline is None:
        note = ax.text(0.01, 0.01, MISSING, transform=ax.transAxes,
                       fontsize=current_style().tiny,
                       color="0.35", gid="land-missing")
        note.set_in_layout(False)
        return False
    lon, lat, land = outline
    fill = ax.contourf(lon, lat, land, levels=[0.5, 1.5], colors=[LAND], zorder=0)
    fill.set_gid("land")
    coast = ax.contour(lon, lat, land, levels=[0.5], colors=[COAST], linewidths=0.4,
                       zorder=0.5)
    coast.set_gid("coastline")
    return True


def draw_tracks(ax, tracks: pd.DataFrame, stations: pd.DataFrame,
                title: str = "ground tracks and stations",
                epoch: datetime | str | None = None) -> None:
    """The ground-track map on ``ax``: land, tracks, stations with labels placed so that
    they do not overlap (they are placed when the figure is drawn, see ``LabelPlacer``);
    the title states the UTC span drawn (from ``epoch``, when given)."""
    draw_land(ax)
    parts, colours = [], []
    for i, (_, track) in enumerate(tracks.groupby("satellite", sort=False)):
        lon, lat = track["lon_deg"].to_numpy(), track["lat_deg"].to_numpy()
        # Break the line where it wraps around the antimeridian.
        breaks = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1
        pieces = np.split(np.arange(len(lon)), breaks)
        parts += [np.column_stack([lon[part], lat[part]]) for part in pieces]
        colours += [cue(i).colour] * len(pieces)  # a satellite keeps its colour across
    # One collection, not a line per part (hundreds at constellation scale), with the cap
    # and join a line of its own would have.
    ax.add_collection(LineCollection(
        parts, linewidths=0.6, alpha=0.7, gid="tracks", colors=colours,
        capstyle=plt.rcParams["lines.solid_capstyle"],
        joinstyle=plt.rcParams["lines.solid_joinstyle"]), autolim=False)
    ax.scatter(stations["lon_deg"], stations["lat_deg"], marker="^", c="k", s=40, zorder=3)
    labels = [ax.annotate(literal(s["id"]), (s["lon_deg"], s["lat_deg"]), xytext=(0, 0),
                          textcoords="offset points", fontsize=current_style().tiny,
                          zorder=4,
                          gid="station-label",
                          bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                                "alpha": 0.6})
              for _, s in stations.iterrows()]
    for label in labels:
        label.set_in_layout(False)
    ax.add_artist(LabelPlacer(labels))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.grid(alpha=0.3)
    span = time_span(tracks, epoch)
    ax.set_title(f"{title}\n{span}" if span else title)


def empty_note(ax, text: str) -> None:
    """Say on the figure why it is empty, rather than leave a blank plot to be misread."""
    note = ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 48)), transform=ax.transAxes,
                   ha="center", va="center", fontsize=current_style().font, color="0.35")
    note.set_in_layout(False)  # a long run name must not squeeze the panels to nothing


def save_figure(fig, out: Path) -> Path:
    """Save (whole or not at all) and close the figure."""
    return save_formats(fig, out.with_suffix(""), (out.suffix[1:] or "png",))[0]


def save_formats(fig, stem: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Save the figure once per format (``stem.png``, ``stem.svg``, ...), each whole or not
    at all, then close it. SVG keeps text as text, so names stay searchable; PDF and
    PostScript embed TrueType fonts, never Type 3 (whatever style drew the figure)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with plt.rc_context(FONTS):
            for fmt in formats:
                out = stem.parent / f"{stem.name}.{fmt}"
                atomic_write(out, lambda partial, fmt=fmt: fig.savefig(partial, dpi=DPI,
                                                                       format=fmt))
                written.append(out)
    finally:
        plt.close(fig)
    return written


def run_colours(names: list[str]) -> dict[str, str]:
    """One colour per run, the same in every figure of a report (``run_cues``' colours)."""
    return {name: look.colour for name, look in run_cues(names).items()}


def run_cues(names: list[str]) -> dict:
    """One look (colour and second cue) per run, the same in every figure of a report."""
    return {name: cue(i) for i, name in enumerate(names)}


def class_names(manifest: dict, classes: int) -> list[str]:
    """The data set's class names as the run recorded them (manifest ``class_names``), or
    ``class k`` for a run directory from before they were recorded."""
    names = manifest.get("class_names")
    if isinstance(names, list) and len(names) == classes:
        return [literal(n, 24) for n in names]
    return [f"class {k}" for k in range(classes)]
