"""``dashboard.html``: the study's front page, one self-contained offline file that overlays
several runs: every view of the report (accuracy against bytes, time and energy with
time-to-target stars; bytes by payload kind and direction; cumulative bytes; per-pass link
use and the share of contact time used; what each round waited for; contact Gantt and
ground tracks on land drawn from the MODIS land cover; battery and energy per satellite;
per-class accuracy),
a run selector (a checkbox per run shows or hides it everywhere) and a table of the scenario
keys that differ between the selected runs.

plotly.js is embedded once, gzip-compressed (the Python package ships only the full 4.8 MB
bundle; no partial bundle is available offline), and unpacked by the browser's own
``DecompressionStream``: about 2 MB instead of 4.8, no CDN, no download. The views' JSON
is packed the same way."""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
from functools import lru_cache
from pathlib import Path

import contourpy
import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.colors import ListedColormap, to_hex
from PIL import Image
from plotly.subplots import make_subplots

from orbitfl.core.atomic import atomic_write_text
from orbitfl.core.landmask import MISSING

from .downloads import SCRIPT as DOWNLOADS
from .downloads import Downloads
from .figures import (
    ACCURACIES,
    COAST,
    FACTOR_COLOURS,
    LAND,
    MAX_PANELS,
    class_names,
    land_outline,
)
from .labels import place_labels
from .run_data import (
    FACTORS,
    bytes_by_kind,
    energy_per_satellite,
    pass_utilisation,
    round_breakdown,
    worst_satellites,
)
from .run_model import MB
from .style import PALETTE
from .styled import StyledRun

HEIGHT = 380
PAYLOAD_COLOURS = ListedColormap(PALETTE)  # the payload kinds' colours (Okabe-Ito)
TARGETS = {  # the x of a time-to-target hit on each accuracy axis
    "bytes": lambda hit: (hit["bytes_up"] + hit["bytes_down"]) / MB,
    "time": lambda hit: hit["sim_time_s"] / 3600,
    "energy": lambda hit: hit["energy_j"] / 1e3,
}


def _layout(fig: go.Figure, title: str, xlabel: str = "", ylabel: str = "",
            **extra) -> go.Figure:
    """Shared look; an empty figure says why on the plot rather than stay blank."""
    titles = {"xaxis_title": xlabel} if xlabel else {}  # (subplots title their own axes)
    titles |= {"yaxis_title": ylabel} if ylabel else {}
    fig.update_layout(**{"title": title, **titles, "height": HEIGHT,
                         "margin": dict(l=60, r=20, t=50, b=50), **extra})
    if not fig.data:
        fig.add_annotation(text="nothing to show in the selected runs", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _colour(run: StyledRun) -> str:
    return to_hex(run.colour)


def _text(value: object) -> str:
    """A value from a run directory as plotly text: plotly reads its strings as a subset
    of HTML (and decodes entities), so run data is escaped like any HTML text (issue 22:
    a shared run directory must not inject markup into the reader's page)."""
    return html.escape(str(value))


def _label(run: StyledRun) -> str:
    """A run's name as it appears (and groups traces) in the views."""
    return _text(run.name)


def _accuracy(runs: list[StyledRun], x_of, target: str, title: str, xlabel: str) -> go.Figure:
    """Every accuracy metric a run measured against ``x_of(run)`` (overall solid, the
    others dashed or dotted; a segmentation run's mIoU long-dashed), stars where the metric
    its targets read (accuracy, or mIoU) reached a target."""
    fig = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    for run in runs:
        x, rounds = np.asarray(x_of(run), dtype=float), run.data.rounds
        for (column, label), dash in zip((*ACCURACIES, ("miou", "mIoU")), dashes):
            if column not in rounds:
                continue
            rows = (rounds["accuracy"].notna() & rounds[column].notna()).to_numpy()
            if rows.any():
                fig.add_trace(go.Scatter(
                    x=x[rows], y=100 * rounds.loc[rows, column].to_numpy(dtype=float),
                    mode="lines+markers", name=f"{_label(run)}: {label}", legendgroup=_label(run),
                    line={"color": _colour(run), "dash": dash}))
        stars = [(TARGETS[target](hit), 100 * float(threshold))
                 for threshold, hit in (run.data.manifest.get("time_to_target") or {}).items()
                 if isinstance(hit, dict) and _has(hit, target)]
        if stars:
            fig.add_trace(go.Scatter(
                x=[s[0] for s in stars], y=[s[1] for s in stars], mode="markers+text",
                text=[f"{y:.0f}%" for _, y in stars], textposition="bottom right",
                name=f"{_label(run)}: time to target", legendgroup=_label(run),
                marker={"symbol": "star", "size": 13, "color": _colour(run),
                        "line": {"color": "black", "width": 0.5}}))
    return _layout(fig, title, xlabel, "accuracy or mIoU (%)" if any(
        run.data.manifest.get("time_to_target_metric") == "miou" for run in runs)
        else "accuracy (%)", yaxis_range=[0, 100])


def _has(hit: dict, target: str) -> bool:
    """Whether a time-to-target record carries the x this axis needs (older runs lack
    energy)."""
    try:
        return bool(np.isfinite(TARGETS[target](hit)))
    except (KeyError, TypeError):
        return False


def _bytes_by_kind(runs: list[StyledRun]) -> go.Figure:
    """Delivered bytes stacked by payload kind, one bar per run, uplink and downlink in
    panels of their own (a linear axis each, so a small payload is a visible segment)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ground to satellites (up)",
                                                         "satellites to ground (down)"))
    tables = {run.name: bytes_by_kind(run.data) for run in runs}
    kinds = sorted({k for table in tables.values() for k in table.index})
    palette = {k: to_hex(PAYLOAD_COLOURS(i % 8)) for i, k in enumerate(kinds)}
    for col, direction in ((1, "up"), (2, "down")):
        for run in runs:
            table = tables[run.name]
            for kind in kinds:
                value = float(table[direction].get(kind, 0)) if direction in table else 0.0
                if value > 0:
                    fig.add_trace(go.Bar(
                        x=[_label(run)], y=[value / MB], name=_text(kind), legendgroup=_label(run),
                        marker={"color": palette[kind], "line": {"color": _colour(run),
                                                                 "width": 2}},
                        showlegend=col == 1 and run is runs[0],
                        hovertemplate=f"{html.escape(kind)} {direction}: %{{y:.3g}} MB"
                                      "<extra>%{x}</extra>"), row=1, col=col)
        fig.update_yaxes(title_text="MB delivered", row=1, col=col)
    return _layout(fig, "bytes delivered by payload kind (stacked) and direction", "", "",
                   barmode="stack", margin=dict(l=60, r=20, t=80, b=50))


def _cumulative_bytes(runs: list[StyledRun]) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        rounds = run.data.rounds
        for direction, dash in (("up", "dash"), ("down", "solid")):
            prefix = f"bytes_{direction}_"
            for column in sorted(c for c in rounds.columns if c.startswith(prefix)):
                fig.add_trace(go.Scatter(
                    x=rounds["sim_time_s"] / 3600, y=rounds[column] / MB,
                    mode="lines", line={"shape": "hv", "color": _colour(run), "dash": dash},
                    name=f"{_label(run)}: {_text(column[len(prefix):])} {direction}",
                    legendgroup=_label(run)))
    return _layout(fig, "cumulative bytes delivered (up dashed)", "simulated time (h)",
                   "MB")


def _link_utilisation(runs: list[StyledRun]) -> go.Figure:
    """Per pass, capacity against bytes moved (circles down, triangles up), and the
    distribution of the share of each pass's contact time used."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15, subplot_titles=(
        "per pass: capacity vs moved", "contact time used"))
    for run in runs:
        table = pass_utilisation(run.data)
        for direction, symbol in (("down", "circle"), ("up", "triangle-up")):
            mine = table[table["direction"] == direction]
            if len(mine):
                fig.add_trace(go.Scatter(
                    x=mine["capacity"] / MB, y=mine["moved"] / MB, mode="markers",
                    marker={"color": _colour(run), "symbol": symbol, "size": 6},
                    name=f"{_label(run)}: {direction}link", legendgroup=_label(run),
                    customdata=100 * mine["time_share"].fillna(0),
                    hovertemplate="capacity %{x:.3g} MB<br>moved %{y:.3g} MB<br>"
                                  "%{customdata:.0f}% of the pass"), row=1, col=1)
        share = np.sort(table["time_share"].dropna().to_numpy())
        if len(share):
            fig.add_trace(go.Scatter(
                x=100 * share, y=np.arange(1, len(share) + 1) / len(share), mode="lines",
                line={"color": _colour(run), "shape": "hv"}, legendgroup=_label(run),
                name=f"{_label(run)}: passes", hovertemplate="%{y:.0%} of passes used at "
                "most %{x:.1f}% of their time"), row=1, col=2)
    fig.update_xaxes(title_text="pass capacity (MB)", row=1, col=1)
    fig.update_yaxes(title_text="MB moved in the pass", row=1, col=1)
    fig.update_xaxes(title_text="contact time used (%)", range=[0, 100], row=1, col=2)
    fig.update_yaxes(title_text="fraction of passes", range=[0, 1.02], row=1, col=2)
    return _layout(fig, "link utilisation", margin=dict(l=60, r=20, t=80, b=50))


def _breakdown(runs: list[StyledRun]) -> go.Figure:
    """Each round's time split by what it waited for (``report.round_breakdown``): one
    stacked bar per run and round."""
    fig = go.Figure()
    for run in runs:
        table = round_breakdown(run.data) / 3600
        for factor in FACTORS:
            if len(table) and table[factor].any():
                fig.add_trace(go.Bar(
                    x=[[_label(run)] * len(table), [f"round {k}" for k in table.index]],
                    y=table[factor], name=factor, legendgroup=_label(run),
                    showlegend=run is runs[0], marker={"color": FACTOR_COLOURS[factor]},
                    hovertemplate=f"{factor}: %{{y:.3g}} h<extra>%{{x}}</extra>"))
    return _layout(fig, "what each round waited for", "", "hours", barmode="stack")


def _gantt(runs: list[StyledRun]) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        c = run.data.contacts
        if len(c):
            fig.add_trace(go.Bar(
                base=c["start_s"] / 3600, x=c["duration_s"] / 3600,
                y=[f"{_text(satellite)} ({_label(run)})" for satellite in c["satellite"]],
                orientation="h", text=[_text(station) for station in c["station"]],
                textposition="none", name=_label(run), legendgroup=_label(run),
                marker={"color": _colour(run)},
                hovertemplate="%{text}: %{base:.2f} h + %{x:.2f} h"))
    return _layout(fig, "contact windows", "hours since scenario epoch", "",
                   yaxis={"autorange": "reversed"})


WIDE = ("ground_tracks", "battery")  # views that span both columns of the page
MAP_PX_PER_DEG = 2.5  # the map's scale on a 1400 px wide page (labels are placed at it)
MAP_HEIGHT = 560


@lru_cache(maxsize=1)
def _land() -> tuple[dict, go.Scatter] | None:
    """The map's land background: a transparent PNG of the land mask (a few kB) as a layout
    image, and the coastline contour as one line trace; None without the MODIS land cover.
    (A plotly geo map would fetch its coastlines from the web.)"""
    outline = land_outline()
    if outline is None:
        return None
    lon, lat, land = outline
    image = Image.fromarray(land[1:-1, 1:-1].astype(np.uint8), mode="P")
    image.putpalette([255, 255, 255, *(int(LAND[i:i + 2], 16) for i in (1, 3, 5))])
    png = io.BytesIO()
    image.save(png, "PNG", optimize=True, transparency=0)
    source = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
    background = {"source": source, "xref": "x", "yref": "y", "x": -180, "y": 90,
                  "sizex": 360, "sizey": 180, "sizing": "stretch", "layer": "below"}
    xs, ys = [], []
    for line in contourpy.contour_generator(lon, lat, land).lines(0.5):
        vertices = np.asarray(line)  # (n, 2) lon, lat
        xs += [*vertices[:, 0].round(2), None]
        ys += [*vertices[:, 1].round(2), None]
    coast = go.Scatter(x=xs, y=ys, mode="lines", name="coastline", hoverinfo="skip",
                       line={"color": to_hex(COAST), "width": 0.6}, showlegend=False)
    return background, coast


def _rounded(values: pd.Series, digits: int = 2) -> list:
    """Coordinates as short JSON numbers (0.01 deg is about a kilometre; binary float64
    arrays would not compress), gaps as null."""
    rounded = np.round(values.to_numpy(dtype=float), digits).tolist()
    return [None if v != v else v for v in rounded]


def _station_labels(stations: pd.DataFrame) -> list[dict]:
    """Station names as annotations placed so that they do not overlap at the map's
    nominal scale (``analysis/labels.py``; text size estimated from its length)."""
    points = np.column_stack([stations["lon_deg"], stations["lat_deg"]]) * MAP_PX_PER_DEG
    names = [str(n) for n in stations["id"]]
    sizes = np.array([(6.5 * len(n) + 4, 14) for n in names])  # 11 px sans-serif
    bounds = (-180 * MAP_PX_PER_DEG, -90 * MAP_PX_PER_DEG, 180 * MAP_PX_PER_DEG,
              90 * MAP_PX_PER_DEG)
    return [{"x": float(x), "y": float(y), "text": html.escape(name), "ax": p.dx,
             "ay": -p.dy, "xanchor": p.ha, "yanchor": p.va, "showarrow": True,
             "arrowhead": 0, "arrowwidth": 0.6, "arrowcolor": "#555", "standoff": 0,
             "font": {"size": 11}, "bgcolor": "rgba(255,255,255,0.6)"}
            for name, (x, y), p in zip(names, stations[["lon_deg", "lat_deg"]].to_numpy(),
                                       place_labels(points, sizes, bounds=bounds))]


def _tracks(runs: list[StyledRun]) -> go.Figure:
    """Ground tracks on the land background (longitude/latitude, equal scale), stations of
    every run marked once and labelled without overlap."""
    fig = go.Figure()
    land = _land()
    if land is not None:
        fig.add_trace(land[1])
    for run in runs:
        tracks = run.data.tracks
        if tracks is not None and len(tracks):
            parts = []
            for _, track in tracks.groupby("satellite", sort=False):
                lon = track["lon_deg"].to_numpy(dtype=float)
                lat = track["lat_deg"].to_numpy(dtype=float)
                wrap = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1  # antimeridian
                parts.append(pd.DataFrame({"lon": np.insert(lon, wrap, np.nan),
                                           "lat": np.insert(lat, wrap, np.nan)}))
                parts.append(pd.DataFrame({"lon": [np.nan], "lat": [np.nan]}))
            track = pd.concat(parts, ignore_index=True)
            fig.add_trace(go.Scatter(x=_rounded(track["lon"]), y=_rounded(track["lat"]),
                                     mode="lines",
                                     line={"color": _colour(run), "width": 1},
                                     name=_label(run), legendgroup=_label(run)))
    tables = [t for t in (r.data.stations for r in runs) if t is not None and len(t)]
    stations = pd.concat(tables).drop_duplicates("id") if tables else None
    if stations is not None:
        fig.add_trace(go.Scatter(
            x=stations["lon_deg"], y=stations["lat_deg"], mode="markers",
            text=[_text(station) for station in stations["id"]],
            hovertemplate="%{text}<extra></extra>",
            marker={"symbol": "triangle-up", "size": 9, "color": "black"}, name="stations"))
    title = "ground tracks and stations"
    if land is None:
        title += f"<br><sub>{MISSING}</sub>"
    extra = {"images": [land[0]]} if land is not None else {}
    if stations is not None:
        extra["annotations"] = _station_labels(stations)
    return _layout(fig, title, "longitude (deg)", "latitude (deg)", height=MAP_HEIGHT,
                   xaxis={"range": [-180, 180], "constrain": "domain"},
                   yaxis={"range": [-90, 90], "scaleanchor": "x", "constrain": "domain"},
                   plot_bgcolor="white", **extra)


def _battery(runs: list[StyledRun]) -> go.Figure:
    """State of charge as small multiples, one panel per satellite, the worst-off (lowest
    charge in any run) first, every run overlaid in its colour."""
    satellites = worst_satellites([r.data for r in runs], MAX_PANELS)
    cols = 4
    rows = max(1, -(-len(satellites) // cols))
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True,
                        vertical_spacing=min(0.25, 60 / (190 * rows)),
                        subplot_titles=[html.escape(str(s)) for s in satellites] or None)
    for i, satellite in enumerate(satellites):
        for run in runs:
            power = run.data.power
            if power is not None and len(power):
                trace = power[power["satellite"] == satellite]
                fig.add_trace(go.Scatter(
                    x=trace["t_s"] / 3600, y=100 * trace["soc"], mode="lines",
                    line={"color": _colour(run), "width": 1}, name=_label(run),
                    legendgroup=_label(run), showlegend=i == 0,
                    hovertemplate=f"{html.escape(str(satellite))}: %{{y:.0f}}% at %{{x:.2f}} h"
                                  "<extra></extra>"), row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(range=[0, 100])
    fig.update_yaxes(title_text="state of charge (%)", col=1)
    fig.update_xaxes(title_text="simulated time (h)", row=rows)
    return _layout(fig, "battery state of charge, worst-off satellites first",
                   height=max(HEIGHT, 70 + 190 * rows), margin=dict(l=60, r=20, t=80, b=50))


def _energy(runs: list[StyledRun]) -> go.Figure:
    fig = go.Figure()
    satellites = worst_satellites([r.data for r in runs], MAX_PANELS)
    for run in runs:
        table = energy_per_satellite(run.data).reindex(satellites).dropna(how="all")
        if len(table):
            fig.add_trace(go.Bar(x=[_text(s) for s in table.index], y=table["mission"],
                                 name=_label(run), legendgroup=_label(run),
                                 marker={"color": _colour(run)},
                                 customdata=table[["bus", "wasted", "unserved"]],
                                 hovertemplate="training + radios %{y:.3g} kJ<br>bus "
                                 "%{customdata[0]:.3g} kJ<br>wasted %{customdata[1]:.3g} "
                                 "kJ<br>unserved %{customdata[2]:.3g} kJ"))
    return _layout(fig, "energy per satellite (training + radios)", "", "kJ",
                   barmode="group")


def _per_class(runs: list[StyledRun]) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        evaluated = run.data.evaluated
        if len(evaluated):
            values = np.asarray(evaluated.iloc[-1]["per_class_accuracy"], dtype=float)
            fig.add_trace(go.Bar(x=[_text(c) for c in class_names(run.data.manifest, len(values))],
                                 y=100 * values,
                                 name=_label(run), legendgroup=_label(run),
                                 marker={"color": _colour(run)}))
    return _layout(fig, "final per-class accuracy", "", "accuracy (%)", barmode="group",
                   yaxis_range=[0, 100])


def figures(runs: list[StyledRun]) -> dict[str, go.Figure]:
    """Every view of the dashboard, by anchor name."""
    return {
        "accuracy_vs_bytes": _accuracy(runs, lambda r: r.data.total_bytes, "bytes",
                                       "accuracy vs bytes", "cumulative MB, up + down"),
        "accuracy_vs_time": _accuracy(runs, lambda r: r.data.rounds["sim_time_s"] / 3600, "time",
                                      "accuracy vs simulated time", "hours"),
        "accuracy_vs_energy": _accuracy(runs, lambda r: r.data.energy_kj, "energy",
                                        "accuracy vs energy", "training + radio energy (kJ)"),
        "per_class_accuracy": _per_class(runs),
        "bytes_by_kind": _bytes_by_kind(runs),
        "bytes_vs_time": _cumulative_bytes(runs),
        "link_utilisation": _link_utilisation(runs),
        "round_breakdown": _breakdown(runs),
        "contact_gantt": _gantt(runs),
        "ground_tracks": _tracks(runs),
        "battery": _battery(runs),
        "energy_per_satellite": _energy(runs),
    }


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """A nested scenario as dotted YAML paths to leaf values (lists stay whole)."""
    if isinstance(tree, dict) and tree:
        out: dict[str, object] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def scenario_differences(runs: list[StyledRun]) -> dict[str, list[object]]:
    """The scenario keys (dotted paths) whose values are not the same in every run, with
    each run's value (None where a run lacks the key)."""
    flat = [flatten(r.data.manifest.get("scenario") or {}) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = {key: [f.get(key) for f in flat] for key in keys}
    return {key: values for key, values in rows.items()
            if any(json.dumps(v, sort_keys=True, default=str) !=
                   json.dumps(values[0], sort_keys=True, default=str) for v in values)}


def _differences_table(runs: list[StyledRun]) -> str:
    diff = scenario_differences(runs)
    head = "".join(f'<th data-run="{i}">{html.escape(r.name)}</th>' for i, r in enumerate(runs))
    body = "".join(
        f"<tr><td><code>{html.escape(key)}</code></td>" + "".join(
            f'<td data-run="{i}">{html.escape(json.dumps(v, default=str))}</td>'
            for i, v in enumerate(values)) + "</tr>" for key, values in diff.items())
    if not body:
        body = f'<tr><td colspan="{len(runs) + 1}">the scenarios are the same</td></tr>'
    return f'<table id="differences"><tr><th>scenario key</th>{head}</tr>{body}</table>'


def _summary_cells(run: StyledRun) -> list[str]:
    """One run's line of the summary table, as text (not yet escaped): a run without rounds
    shows dashes, not a crash (and a run that never evaluated shows no accuracy rather than
    "nan %"); a value of the wrong type in a damaged or hostile manifest is shown as it is,
    never formatted as a number nor written into the page as markup (issue 22)."""
    data = run.data
    summary = data.manifest["summary"]
    cells = [run.name, _shown(summary["rounds_completed"], "{:d}"),
             _shown(summary["final_accuracy"], "{:.1f} %", 100)]
    if len(data.rounds):
        cells += [f"{data.total_bytes.iloc[-1]:.1f} MB",
                  f"{data.rounds['sim_time_s'].iloc[-1] / 3600:.2f} h"]
    else:
        cells += ["–", "–"]
    return cells


def _shown(value: object, form: str, scale: float = 1) -> str:
    """A manifest number in ``form``; a dash for null or NaN; anything else as its text."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and form == "{:d}"):
        return str(value)
    return form.format(value * scale)


SUMMARY_COLUMNS = ("run", "rounds", "final accuracy", "bytes", "simulated time")


def pack(data: bytes) -> str:
    """gzip-compressed (deterministic: no timestamp) and base64-encoded, for the browser's
    ``DecompressionStream`` to unpack."""
    return base64.b64encode(gzip.compress(data, 9, mtime=0)).decode("ascii")


def unpack(text: str) -> bytes:
    return gzip.decompress(base64.b64decode(text))


@lru_cache(maxsize=1)
def packed_plotly_js() -> str:
    """plotly.min.js from the installed package, packed."""
    return pack((Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes())


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no ``<``, ``>`` or ``&`` that could end the
    element or open a comment, no line separators that end a JavaScript string."""
    text = json.dumps(value)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


# Errors are recorded on <body data-errors> so that a headless browser can report them, and
# shown in a banner at the top of the page so that a reader knows a view may be missing.
CATCH = """<script>window.orbitflErrors=[];
function orbitflShowErrors(){const banner=document.getElementById('errors');
if(!banner||!orbitflErrors.length)return;banner.hidden=false;
banner.textContent='A script of this page failed, so some views may be missing or '+
'incomplete: '+orbitflErrors.join(' | ');}
function orbitflReport(message){orbitflErrors.push(String(message));orbitflShowErrors();}
window.addEventListener('error',e=>orbitflReport(e.message));
window.addEventListener('unhandledrejection',e=>orbitflReport(e.reason));
window.addEventListener('DOMContentLoaded',orbitflShowErrors);
const consoleError=console.error;console.error=(...a)=>{orbitflReport(a.join(' '));
consoleError(...a);};</script>"""

BANNER = ('<div id="errors" role="alert" hidden style="background:#fdd;border:1px solid '
          '#c00;padding:8px;margin-bottom:12px"></div>')

DRAW = """<script>
async function unpack(id) {
  const packed = Uint8Array.from(atob(document.getElementById(id).textContent),
                                 c => c.charCodeAt(0));
  const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip'));
  return await new Response(stream).text();
}
let FIGURES = {};
async function loadPlotly() {
  const script = document.createElement('script');
  script.textContent = await unpack('plotlyjs');
  document.head.appendChild(script);
  FIGURES = JSON.parse(await unpack('figures'));
}
function selected() {
  return [...document.querySelectorAll('#toggles input')].map(b => b.checked);
}
function applySelection() {
  const on = selected();
  document.querySelectorAll('#differences [data-run]').forEach(cell =>
    cell.style.display = on[+cell.dataset.run] ? '' : 'none');
  document.querySelectorAll('.plot').forEach(el => {
    if (!el.data) return;
    const groups = el.data.map(t => t.legendgroup);
    const idx = groups.map((g, i) => i), vis = groups.map(g => on[RUNS.indexOf(g)] !== false);
    if (idx.length) Plotly.restyle(el, {visible: vis}, idx);
  });
}
loadPlotly().then(async () => {
  for (const [id, spec] of Object.entries(FIGURES)) {
    const el = document.getElementById(id);
    await Plotly.newPlot(el, spec.data, spec.layout, {displaylogo: false});
    const r = el.getBoundingClientRect();
    el.dataset.box = [r.left + scrollX, r.top + scrollY, r.width, r.height]
      .map(Math.round).join(',');
  }
  document.querySelectorAll('#toggles input').forEach(b =>
    b.addEventListener('change', applySelection));
  document.body.dataset.drawn = Object.keys(FIGURES).length;
}).catch(e => orbitflReport(e)).finally(() =>
  document.body.dataset.errors = orbitflErrors.join(' | '));
</script>"""


def write_dashboard(runs: list[StyledRun], out: Path) -> Path:
    """The runs' page. Every value from a run directory is escaped where it is written
    (html.escape in the page, ``_text`` in the views, ``_script_json`` in scripts):
    a shared run directory is data, never markup or script (issue 22)."""
    boxes = "".join(
        f'<label><input type="checkbox" checked data-run="{i}"> '
        f'<span style="color:{_colour(r)}">{html.escape(r.name)}</span></label> '
        for i, r in enumerate(runs))
    rows = [_summary_cells(r) for r in runs]
    summary = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                      for row in rows)
    csv = Downloads()
    summary_csv = csv.link("summary table", pd.DataFrame(rows, columns=SUMMARY_COLUMNS),
                           "summary.csv")
    tables = "".join(csv.run_links(r.name, r.data) for r in runs)
    heads = "".join(f"<th>{c}</th>" for c in SUMMARY_COLUMNS)
    header = f"""<h1>orbitfl runs</h1>
<table><tr>{heads}</tr>{summary}</table>
<p id="toggles">runs: {boxes}</p>
<details id="csv"><summary>tables as CSV</summary><p>{summary_csv}</p><ul>{tables}</ul>
</details>
<h2>scenario differences</h2>{_differences_table(runs)}"""
    return _write_page(out, header, figures(runs), [_label(r) for r in runs], csv.texts)


def _write_page(out: Path, header: str, views: dict[str, go.Figure],
                runs: list[str], tables: dict[str, str] | None = None) -> Path:
    """One offline page: ``header``, then each view in a grid; plotly.js packed once and
    the views' data packed too (coastlines and tracks compress well), and ``tables`` (CSV
    texts by key, for the header's download links) likewise."""
    specs = "{" + ",".join(f"{json.dumps(name)}:{pio.to_json(fig, validate=False)}"
                           for name, fig in views.items()) + "}"
    divs = "".join(f'<div class="plot{" wide" if name in WIDE else ""}" id="{name}"></div>'
                   for name in views)
    csv = "" if not tables else (
        f'<script id="tables" type="application/json+gzip">'
        f"{pack(json.dumps(tables).encode())}</script>\n{DOWNLOADS}")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>orbitfl dashboard</title>{CATCH}
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse;
margin-bottom:12px}} td,th{{border:1px solid #ccc;padding:4px 8px}} .grid{{display:grid;
grid-template-columns:1fr 1fr;gap:10px}} .plot{{min-height:{HEIGHT}px}}
.wide{{grid-column:1/-1}}</style></head><body>
{BANNER}
{header}
<div class="grid">{divs}</div>
<script id="plotlyjs" type="application/octet-stream">{packed_plotly_js()}</script>
<script id="figures" type="application/json+gzip">{pack(specs.encode())}</script>
<script>const RUNS = {_script_json(runs)};</script>
{DRAW}{csv}</body></html>"""
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, page)
