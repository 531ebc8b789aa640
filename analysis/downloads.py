"""The dashboard's tables as CSV downloads (issue 21 item 6): each run's tables and the
page's summary, packed into the page (gzip, base64, as the views are) and handed to the
browser as a file when a link is clicked: offline, no server, no CDN. A table too large to
embed keeps its link's place with the parquet file to read instead."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd

from .run_model import Run

TABLES = ("rounds", "clients", "transfers", "contacts", "power", "tracks", "stations")
MAX_ROWS = 200_000  # beyond this a table would swell the page: read its parquet file

# Needs the page's ``unpack`` (the views' script) and an element ``<script id="tables">``.
SCRIPT = """<script>
let CSV = null;
async function downloadCsv(event) {
  event.preventDefault();
  const link = event.currentTarget;
  if (CSV === null) CSV = JSON.parse(await unpack('tables'));
  const url = URL.createObjectURL(new Blob([CSV[link.dataset.csv]], {type: 'text/csv'}));
  const save = document.createElement('a');
  save.href = url;
  save.download = link.getAttribute('download');
  document.body.appendChild(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
document.querySelectorAll('a[data-csv]').forEach(a => a.addEventListener('click', e =>
  downloadCsv(e).catch(err => orbitflReport('CSV download: ' + err))));
</script>"""


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV; cells holding lists or arrays (per-class accuracy) as JSON lists."""
    def cell(value: object) -> object:
        if isinstance(value, np.ndarray):
            return json.dumps(value.tolist())
        if isinstance(value, (list, tuple)):
            return json.dumps(list(value), default=str)
        return value

    nested = [c for c in frame.columns if frame[c].dtype == object]
    out = frame.assign(**{c: frame[c].map(cell) for c in nested}) if nested else frame
    return out.to_csv(index=False)


def file_name(*parts: str) -> str:
    """A download's file name from run and table names: letters, digits, ``.-_`` only."""
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("._") or "run"
                    for p in parts) + ".csv"


class Downloads:
    """The CSV texts a page embeds (by key) and the links that download them."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def link(self, label: str, frame: pd.DataFrame, name: str, source: str = "") -> str:
        """A link downloading ``frame`` as ``name``; past ``MAX_ROWS``, a note naming
        ``source`` (the parquet file) instead."""
        if len(frame) > MAX_ROWS:
            return (f'<span title="{len(frame)} rows: too large to embed">'
                    f"{html.escape(label)} (read {html.escape(source)})</span>")
        key = str(len(self.texts))
        self.texts[key] = csv_text(frame)
        return (f'<a href="#" data-csv="{key}" download="{html.escape(name)}">'
                f"{html.escape(label)}</a>")

    def run_links(self, label: str, run: Run) -> str:
        """One line of links: each of ``run``'s tables that it has, named by ``label``
        (the run's name on the page)."""
        links = [self.link(table, run.table(table), file_name(label, table),
                           f"{table}.parquet") for table in TABLES if run.has(table)]
        return (f"<li>{html.escape(label)}: " + " · ".join(links) + "</li>") if links \
            else ""
