"""``dashboard.html``: one self-contained offline page (plotly's JavaScript is embedded; no
CDN) that overlays several runs; a checkbox per run shows or hides it in every plot."""

from __future__ import annotations

import html
import json
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.colors import to_hex

from orbitfl.atomic import atomic_write_text

from .report import MB, Run, bytes_by_kind


def _figure(runs: list[Run], x_of, y_column: str, title: str, xlabel: str,
            ylabel: str) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        rows = run.rounds["accuracy"].notna()
        fig.add_trace(go.Scatter(x=list(x_of(run)[rows]),
                                 y=list(100 * run.rounds.loc[rows, y_column]),
                                 mode="lines+markers", name=run.name, legendgroup=run.name,
                                 line={"color": to_hex(run.colour)}))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel,
                      yaxis_range=[0, 100], height=380, margin=dict(l=60, r=20, t=50, b=50))
    return fig


def _bytes_figure(runs: list[Run]) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        table = bytes_by_kind(run)
        fig.add_trace(go.Bar(x=list(table.index), y=list(table.sum(axis=1) / MB),
                             name=run.name, legendgroup=run.name,
                             marker={"color": to_hex(run.colour)}))
    fig.update_layout(title="bytes delivered by payload kind", yaxis_title="MB (up + down)",
                      barmode="group", height=380, margin=dict(l=60, r=20, t=50, b=50))
    return fig


def _summary_row(run: Run) -> str:
    """One run's line of the summary table; a run without rounds shows dashes, not a crash
    (and a run that never evaluated shows no accuracy rather than "nan %")."""
    summary = run.manifest["summary"]
    accuracy = summary["final_accuracy"]
    cells = [html.escape(run.name), str(summary["rounds_completed"]),
             "–" if accuracy is None or accuracy != accuracy else f"{100 * accuracy:.1f} %"]
    if len(run.rounds):
        cells += [f"{run.total_bytes.iloc[-1]:.1f} MB",
                  f"{run.rounds['sim_time_s'].iloc[-1] / 3600:.2f} h"]
    else:
        cells += ["–", "–"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def write_dashboard(runs: list[Run], out: Path) -> Path:
    figures = [
        _figure(runs, lambda r: r.total_bytes, "accuracy", "accuracy vs bytes",
                "cumulative bytes moved (MB)", "top-1 accuracy (%)"),
        _figure(runs, lambda r: r.rounds["sim_time_s"] / 3600, "accuracy",
                "accuracy vs simulated time", "hours", "top-1 accuracy (%)"),
        _figure(runs, lambda r: r.total_bytes, "few_shot_accuracy", "few-shot accuracy",
                "cumulative bytes moved (MB)", "few-shot accuracy (%)"),
        _bytes_figure(runs),
    ]
    divs = [pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False,
                        div_id=f"plot{i}") for i, fig in enumerate(figures)]
    boxes = "".join(
        f'<label><input type="checkbox" checked data-run="{html.escape(r.name)}"> '
        f"{html.escape(r.name)}</label> " for r in runs)
    summary = "".join(_summary_row(r) for r in runs)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>orbitfl dashboard</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .grid{{display:grid;
grid-template-columns:1fr 1fr;gap:10px}}</style></head><body>
<h1>orbitfl runs</h1>
<table><tr><th>run</th><th>rounds</th><th>final accuracy</th><th>bytes</th>
<th>simulated time</th></tr>{summary}</table>
<p id="toggles">{boxes}</p>
<div class="grid">{''.join(divs)}</div>
<script>
const plots = {json.dumps([f"plot{i}" for i in range(len(figures))])};
document.querySelectorAll('#toggles input').forEach(box => box.addEventListener('change', () => {{
  plots.forEach(id => {{
    const el = document.getElementById(id);
    const idx = el.data.map((t, i) => t.legendgroup === box.dataset.run ? i : -1)
                       .filter(i => i >= 0);
    Plotly.restyle(el, {{visible: box.checked}}, idx);
  }});
}}));
</script></body></html>"""
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, page)
