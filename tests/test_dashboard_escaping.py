"""Issue 22, stored script injection: a run directory is data. Script planted in every
field of manifest.json and in every string column of every table of a real run reaches
dashboard.html only escaped (in the page, in the views' plotly specs and in its scripts),
while the CSV downloads carry the data as it is; in Chromium (CI) no planted script runs."""

import html
import io
import json
import re
import shutil
import subprocess
import tempfile

import pandas as pd
import pytest
import yaml
from test_end_to_end import TINY
from test_mission import _chromium

from orbitfl.analysis.dashboard import unpack, write_dashboard
from orbitfl.analysis.run_model import Run, RunDirectoryError, load_run
from orbitfl.analysis.styled import styled
from orbitfl.cli import main

MARK = '<script>document.body.dataset.pwned'  # in the page only if a payload went in raw


def payload(tag: str) -> str:
    """What a hostile run directory holds at ``tag``: it ends a script element, opens a
    new one, adds an element with an event handler, a JavaScript line separator and a
    comment opener, each of which would run or break the page if written raw."""
    return (f'</script>{MARK}="{tag}"</script><img src=x onerror="document.body.dataset.'
            f"pwned='{tag}'\">&amp;\u2028<!--")


def plant(tree: object, path: str, tags: list[str]) -> object:
    """``tree`` with every leaf (strings, numbers, booleans, nulls; list items too)
    replaced by the payload naming its path; keys are kept so the manifest still parses
    as a run's."""
    if isinstance(tree, dict) and tree:
        return {k: plant(v, f"{path}.{k}" if path else k, tags) for k, v in tree.items()}
    if isinstance(tree, list) and tree:
        return [plant(v, f"{path}[{i}]", tags) for i, v in enumerate(tree)]
    tags.append(f"manifest:{path}")
    return payload(tags[-1])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A real run (3 Doves, 2 stations, one FedAvg round), and a copy of it with script in
    every manifest field and every string column of every table; the names planted."""
    base = tmp_path_factory.mktemp("planted")
    scenario = base / "tiny.yaml"
    scenario.write_text(yaml.safe_dump({**TINY, "fl": {**TINY["fl"], "rounds": 1},
                                        "report": {"figures": False}}))
    clean = base / "clean"
    assert main(["run", str(scenario), "--out", str(clean), "-q"]) == 0
    hostile = base / "hostile"
    shutil.copytree(clean, hostile)
    tags: list[str] = []
    manifest = json.loads((hostile / "manifest.json").read_text())
    (hostile / "manifest.json").write_text(json.dumps(plant(manifest, "", tags)))
    columns = []
    for table in sorted(hostile.glob("*.parquet")):
        frame = pd.read_parquet(table)
        for column in frame.columns:
            if frame[column].map(lambda v: isinstance(v, str)).any():
                tag = f"{table.name}:{column}"
                frame[column] = [payload(f"{tag}:{i}") for i in range(len(frame))]
                columns.append(tag)
        frame.to_parquet(table)
    return clean, hostile, tags, columns


def _page(planted, tmp_path) -> tuple[str, dict, dict]:
    """The two runs' dashboard, its views' specs and its CSV texts (as the page unpacks
    them)."""
    runs = styled([load_run(planted[0]), unchecked_run(planted[1])])
    page = write_dashboard(runs, tmp_path / "dashboard.html").read_text(encoding="utf-8")

    def blob(element: str) -> str:
        found = re.search(rf'<script id="{element}"[^>]*>(.*?)</script>', page, re.S)
        return unpack(found.group(1)).decode()

    return page, json.loads(blob("figures")), json.loads(blob("tables"))


def unchecked_run(path) -> Run:
    """The hostile run as the dashboard would get it if a reader let it through:
    ``load_run`` refuses it (a string where a number is declared), but the page must not
    depend on that, so the tables and manifest are read here without the checks."""
    manifest = json.loads((path / "manifest.json").read_text())
    tables = {name: pd.read_parquet(path / f"{name}.parquet")
              for name in ("rounds", "transfers", "contacts", "power", "tracks", "stations",
                           "clients") if (path / f"{name}.parquet").is_file()}
    return Run(path, manifest, name=manifest["scenario"]["name"], tables={
        "power": None, "tracks": None, "stations": None, "clients": None, **tables})


def test_the_run_reader_refuses_the_hostile_run_in_one_line(planted):
    with pytest.raises(RunDirectoryError) as refused:
        load_run(planted[1])
    assert "\n" not in str(refused.value) and "manifest.json" in str(refused.value)


def _strings(tree: object):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _strings(value)
    elif isinstance(tree, str):
        yield tree


def test_the_planting_reached_every_field(planted):
    _, _, tags, columns = planted
    assert len(tags) > 100 and "manifest:summary.rounds_completed" in tags
    assert "manifest:scenario.name" in tags and "manifest:class_names[0]" in tags
    tables = {c.split(":")[0] for c in columns}
    assert {"contacts.parquet", "transfers.parquet", "stations.parquet", "tracks.parquet",
            "events.parquet", "partition.parquet", "clients.parquet"} <= tables, tables
    assert "contacts.parquet:station" in columns and "stations.parquet:id" in columns


def test_no_planted_payload_is_written_into_the_page_unescaped(planted, tmp_path):
    page, views, tables = _page(planted, tmp_path)
    leaked = re.findall(re.escape(MARK) + r'=\\?"([^"\\]+)', page)
    assert not leaked and "<img src=x" not in page, leaked[:5]
    runs = re.search(r"const RUNS = (.*?);</script>", page).group(1)
    assert not set(runs) & set("<>&\u2028\u2029") and "pwned" in runs  # planted, escaped
    for text in _strings(views):  # plotly reads its strings as HTML: escaped there too
        assert "<script" not in text and "<img" not in text, text[:200]
    # ... and they were shown, escaped, where the page shows them: the summary's rounds
    # (issue 22's sink), the run's name, a station and a satellite name
    shown = html.escape(payload("manifest:summary.rounds_completed"))
    assert f"<td>{shown}</td>" in page
    assert html.escape(payload("manifest:scenario.name")) in page
    escaped = "\n".join(_strings(views))
    for tag in ("stations.parquet:id:0",
                "contacts.parquet:station:0", "contacts.parquet:satellite:0"):
        assert html.escape(payload(tag)) in escaped, tag


def test_csv_downloads_carry_the_tables_as_they_are(planted, tmp_path):
    """The download is the data itself (a file, never markup): planted text unchanged,
    one file per table of each run, and the page's summary table."""
    page, _, tables = _page(planted, tmp_path)
    links = dict(re.findall(r'<a href="#" data-csv="(\d+)" download="([^"]+)">', page))
    assert set(links) == set(tables)
    names = set(links.values())
    assert {"tiny-rounds.csv", "tiny-transfers.csv", "tiny-contacts.csv", "tiny-tracks.csv",
            "tiny-stations.csv", "summary.csv"} <= names, names
    clean = pd.read_parquet(planted[0] / "contacts.parquet")
    by_name = {name: pd.read_csv(io.StringIO(tables[key])) for key, name in links.items()}
    assert by_name["tiny-contacts.csv"]["station"].tolist() == clean["station"].tolist()
    hostile = [table for name, table in by_name.items()
               if name.endswith("-contacts.csv") and name != "tiny-contacts.csv"]
    assert len(hostile) == 1
    assert hostile[0]["station"].tolist() == [payload(f"contacts.parquet:station:{i}")
                                              for i in range(len(clean))]


def test_no_planted_script_runs_in_chromium(planted, tmp_path):
    page_path = tmp_path / "dashboard.html"
    _page(planted, tmp_path)
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=8000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page_path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert "pwned" not in body and 'data-drawn="12"' in body, body
    assert 'data-errors=""' in body and re.search(r'<div id="errors"[^>]*hidden', dom)
