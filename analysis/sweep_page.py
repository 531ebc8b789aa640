"""The sweep's page of the offline dashboard (``orbitfl report SWEEP_DIR``): the group table,
interactive Pareto views coloured by any swept parameter (coinciding points counted),
accuracy bands per group against bytes, time and energy, and time to target per group with
censoring marked. Every user value is escaped: ``html.escape`` in the page and in plotly's
text (which renders a subset of HTML), and the views' JSON is packed out of the HTML."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.colors import to_hex

from .comparisons import ttt_metric
from .curves import AXES
from .dashboard import _layout, _write_page
from .pareto import coinciding, pareto_front
from .run_model import MB
from .sweep_data import Sweep
from .sweep_figures import coinciding_bands, group_bands, group_colours
from .sweep_markdown import estimate, time_to_target
from .time_to_target import group_time_to_target


def _text(value: object) -> str:
    return html.escape(str(value))


def _colour_by(values: pd.Series) -> tuple[list[int], dict]:
    """Category codes of a swept parameter's values and the colour bar that names them."""
    labels = values.astype(str)
    order = sorted(labels.unique(), key=lambda v: (pd.to_numeric(v, errors="coerce"), v))
    codes = [order.index(v) for v in labels]
    return codes, {"tickvals": list(range(len(order))),
                   "ticktext": [_text(v) for v in order]}


def _pareto(ok: pd.DataFrame, x: np.ndarray, parameters: list[str], title: str,
            xlabel: str) -> go.Figure:
    """Final accuracy against ``x`` per complete replicate, coloured by the first swept
    parameter, a menu to colour by any other, the Pareto front drawn through, and a note
    "k points coincide" where points lie on each other."""
    accuracy = 100 * ok["final_accuracy"].to_numpy(dtype=float)
    hover = ["<br>".join([_text(p)] + [f"{_text(n)} = {_text(ok[n].iloc[i])}"
                                       for n in parameters])
             for i, p in enumerate(ok["point"])]
    fig = go.Figure()
    if len(ok) and parameters:
        colourings = [_colour_by(ok[name]) for name in parameters]
        codes, bar = colourings[0]
        fig.add_trace(go.Scatter(
            x=x, y=accuracy, mode="markers", name="points", text=hover,
            hovertemplate="%{text}<extra></extra>",
            marker={"size": 10, "color": codes, "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": _text(parameters[0]), **bar}}))
        front = pareto_front(x, accuracy)
        fig.add_trace(go.Scatter(x=x[front].tolist(), y=accuracy[front].tolist(),
                                 mode="lines", name="Pareto front", line={"color": "red"}))
        fig.update_layout(updatemenus=[{"x": 0, "y": 1.18, "xanchor": "left", "buttons": [
            {"label": f"colour by {_text(name)}", "method": "restyle",
             "args": [{"marker.color": [c], "marker.colorbar.title.text": _text(name),
                       "marker.colorbar.tickvals": [b["tickvals"]],
                       "marker.colorbar.ticktext": [b["ticktext"]]}, [0]]}
            for name, (c, b) in zip(parameters, colourings)]}])
        for rows in coinciding(x, accuracy):
            fig.add_annotation(x=float(x[rows[0]]), y=float(accuracy[rows[0]]),
                               text=f"{len(rows)} points coincide", showarrow=True,
                               arrowhead=0, ax=30, ay=-20, font={"size": 10})
    return _layout(fig, f"{title} (red: Pareto front)", xlabel, "final accuracy (%)",
                   yaxis_range=[0, 100], showlegend=False,
                   margin=dict(l=60, r=20, t=90, b=50))


def _json_floats(values: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in values]


def _bands(sweep: Sweep, axis: str) -> go.Figure:
    """Overall accuracy against ``axis``: per group the mean over its replicates and the
    95 % band where every replicate's run reaches, then single replicates as thin lines."""
    fig = go.Figure()
    colours = group_colours(sweep)
    bands = group_bands(sweep, axis, "accuracy")
    same = coinciding_bands(bands)
    for group, b in bands.items():
        name, colour = _text(sweep.label(group)), to_hex(colours[group])
        on = f", on {_text(sweep.label(same[group]))}'s curve" if group in same else ""
        full = b.full & np.isfinite(b.low)
        if full.any():
            xs, lo, hi = b.grid[full], 100 * b.low[full], 100 * b.high[full]
            fig.add_trace(go.Scatter(
                x=np.concatenate([xs, xs[::-1]]).tolist(),
                y=np.concatenate([hi, lo[::-1]]).tolist(), fill="toself", mode="lines",
                line={"width": 0}, fillcolor=colour, opacity=0.2, hoverinfo="skip",
                name=f"{name}: 95 % interval", legendgroup=name, showlegend=False))
        fig.add_trace(go.Scatter(
            x=b.grid.tolist(), y=_json_floats(np.where(b.full, 100 * b.mean, np.nan)),
            mode="lines", name=f"{name} (n={b.replicates}{on})", legendgroup=name,
            line={"color": colour, "dash": "dash" if on else "solid"}))
        for values in b.beyond():  # single replicates after the others had stopped
            fig.add_trace(go.Scatter(
                x=b.grid.tolist(), y=_json_floats(100 * values), mode="lines",
                name=f"{name}: one replicate", legendgroup=name, showlegend=False,
                line={"color": colour, "width": 1}, opacity=0.6))
    return _layout(fig, f"accuracy vs {axis}: mean and 95 % interval over replicates",
                   AXES[axis][0], "accuracy (%)", yaxis_range=[0, 100])


def _time_to_target(sweep: Sweep, threshold: float | None) -> go.Figure:
    """Per group the Kaplan-Meier median time to target with its interval; an open marker
    and "k/n reached" where some replicates never reached, a triangle at the longest run
    where fewer than half did (the median lies beyond it)."""
    fig = go.Figure()
    if threshold is not None:
        colours = group_colours(sweep)
        for group in sweep.groups:
            km = group_time_to_target(sweep.rows(group), threshold, "sim_time")
            if km.n == 0:
                continue
            name, colour = _text(sweep.label(group)), to_hex(colours[group])
            reached = f"{km.reached}/{km.n} reached"
            if not np.isfinite(km.median):
                last = float(pd.to_numeric(sweep.complete(group)["sim_time_h"]).max())
                fig.add_trace(go.Scatter(
                    x=[name], y=[last], mode="markers+text", text=[f"> {last:.3g} h, {reached}"],
                    textposition="top center", name=name,
                    marker={"symbol": "triangle-up-open", "size": 12, "color": colour}))
                continue
            hi = km.hi if np.isfinite(km.hi) else float(
                pd.to_numeric(sweep.complete(group)["sim_time_h"]).max())
            lo = km.lo if np.isfinite(km.lo) else km.median
            censored = km.reached < km.n
            fig.add_trace(go.Scatter(
                x=[name], y=[km.median], mode="markers+text",
                text=[reached if censored else ""], textposition="middle right", name=name,
                error_y={"type": "data", "symmetric": False, "array": [hi - km.median],
                         "arrayminus": [km.median - lo]},
                marker={"size": 11, "color": colour,
                        "symbol": "circle-open" if censored else "circle"}))
    title = (f"time to {100 * threshold:g} % accuracy (Kaplan-Meier median, 95 % interval;"
             " open: censored)") if threshold is not None else "time to target: none reached"
    return _layout(fig, title, "group", "simulated hours", showlegend=False)


def _group_table(sweep: Sweep, numbers: pd.DataFrame, threshold: float | None) -> str:
    """The groups' accuracy and time to target as an HTML table (every cell escaped)."""
    ttt = ttt_metric(threshold) if threshold is not None else None
    head = "<tr><th>group</th><th>accuracy</th>" + \
        (f"<th>time to {100 * threshold:g} %</th>" if threshold is not None else "") + "</tr>"
    rows = []
    for group in sweep.groups:
        mine = numbers[numbers["group"] == group].set_index("metric", drop=False)
        cells = [sweep.label(group), estimate(mine.loc["final_accuracy"])]
        if ttt is not None:
            cells.append(time_to_target(mine.loc[ttt]))
        rows.append("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_sweep_dashboard(sweep: Sweep, numbers: pd.DataFrame, threshold: float | None,
                          out: Path) -> Path:
    """The sweep's page: the group table, then Pareto, bands and time-to-target views."""
    table = sweep.table
    ok = table[table["status"] == "complete"].reset_index(drop=True)
    total = (ok["bytes_up"] + ok["bytes_down"]).to_numpy(dtype=float) / MB
    views = {"pareto_bytes": _pareto(ok, total, sweep.parameters, "final accuracy vs bytes",
                                     "bytes moved, up + down (MB)"),
             "pareto_time": _pareto(ok, ok["sim_time_h"].to_numpy(dtype=float),
                                    sweep.parameters, "final accuracy vs simulated time",
                                    "hours"),
             **{f"bands_{axis}": _bands(sweep, axis) for axis in AXES},
             "time_to_target": _time_to_target(sweep, threshold)}
    header = (f"<h1>orbitfl sweep</h1><p>{len(ok)} of {len(table)} runs complete in "
              f"{len(sweep.groups)} groups; swept: "
              f"{_text(', '.join(sweep.parameters))}</p>"
              f"{_group_table(sweep, numbers, threshold)}")
    return _write_page(out, header, views, [])
