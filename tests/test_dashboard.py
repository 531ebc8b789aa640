"""The dashboard as the study's front page (issue 16), on small hand-made runs: plotly.js
included once and compressed (a two-run page at most half of what it was), a run
selector, and a table of exactly the scenario keys that differ between the runs."""

import copy
import json
import re
from pathlib import Path

import pandas as pd
import plotly

from orbitfl.analysis.dashboard import unpack, write_dashboard
from orbitfl.analysis.run_model import Run
from orbitfl.analysis.styled import StyledRun, styled

BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SCENARIO = {"name": "a", "seed": 1, "duration": "6h",
            "fl": {"strategy": "safe", "rounds": 3, "schedule": {"mode": "sync"}}}


def _run(name: str, scenario: dict) -> Run:
    rounds = pd.DataFrame({"sim_time_s": [0.0, 3600.0, 7200.0], "accuracy": [0.1, 0.5, 0.7],
                           "few_shot_accuracy": [0.0, 0.2, 0.4],
                           "per_class_accuracy": [[0.1, 0.1], [0.4, 0.6], [0.6, 0.8]],
                           "bytes_up": [0.0, 2e6, 4e6], "bytes_down": [0.0, 1e6, 2e6],
                           "bytes_up_model": [0.0, 2e6, 4e6],
                           "bytes_down_update": [0.0, 1e6, 2e6]})
    transfers = pd.DataFrame({"kind": ["model", "update"], "bytes": [2e6, 1e6],
                              "src": ["ground", "sat-1"], "dst": ["sat-1", "ground"],
                              "status": ["delivered", "delivered"]})
    manifest = {"scenario": scenario, "class_names": ["cat", "dog"],
                "summary": {"rounds_completed": 2, "final_accuracy": 0.7},
                "time_to_target": {"0.5": {"sim_time_s": 3600.0, "bytes_up": 2e6,
                                           "bytes_down": 1e6, "energy_j": 10.0}}}
    return Run(Path(name), manifest, name=name, tables={
        "rounds": rounds, "transfers": transfers, "contacts": pd.DataFrame()})


def _views(page: str) -> dict:
    """The views' plotly specs, as the page's script unpacks them."""
    packed = re.search(r'<script id="figures"[^>]*>(.*?)</script>', page, re.S).group(1)
    return json.loads(unpack(packed))


def _two_runs() -> list[StyledRun]:
    other = copy.deepcopy(SCENARIO)
    other["fl"]["strategy"] = "fedavg"
    return styled([_run("safe-run", SCENARIO), _run("fedavg-run", other)])


def test_two_run_dashboard_is_at_most_half_its_former_size(tmp_path):
    """It embedded the whole 4.8 MB plotly.min.js; now the bundle travels once, gzipped."""
    page = write_dashboard(_two_runs(), tmp_path / "dashboard.html").read_text()
    assert len(page.encode()) <= BUNDLE.stat().st_size / 2
    assert page.count('id="plotlyjs"') == 1 and "<script src=" not in page


def test_dashboard_has_a_run_selector(tmp_path):
    page = write_dashboard(_two_runs(), tmp_path / "dashboard.html").read_text()
    toggles = re.search(r'<p id="toggles">(.*?)</p>', page, re.S).group(1)
    assert toggles.count('type="checkbox"') == 2
    assert "safe-run" in toggles and "fedavg-run" in toggles


def test_scenario_difference_table_lists_exactly_the_differing_keys(tmp_path):
    page = write_dashboard(_two_runs(), tmp_path / "dashboard.html").read_text()
    table = re.search(r'<table id="differences">(.*?)</table>', page, re.S).group(1)
    rows = {re.sub("<[^>]+>", "", key): [re.sub("<[^>]+>", "", v) for v in values]
            for key, *values in (re.findall(r"<td[^>]*>(.*?)</td>", row)
                                 for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:])}
    assert rows == {"fl.strategy": ["&quot;safe&quot;", "&quot;fedavg&quot;"]}


def test_a_failing_script_shows_a_banner_in_the_page(tmp_path):
    """The banner is in every page, hidden; in Chromium (CI), a page whose views cannot be
    unpacked shows it with the error, and no view is drawn."""
    import subprocess
    import tempfile

    from test_mission import _chromium

    path = write_dashboard(_two_runs(), tmp_path / "dashboard.html")
    page = path.read_text()
    assert re.search(r'<div id="errors" role="alert" hidden', page)
    broken = re.sub(r'(<script id="figures"[^>]*>)[^<]*', r"\1not base64!", page)
    (tmp_path / "broken.html").write_text(broken)
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=8000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", (tmp_path / "broken.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    banner = re.search(r'<div id="errors"([^>]*)>(.*?)</div>', dom, re.S)
    assert "hidden" not in banner.group(1) and "A script of this page failed" in banner.group(2)
    assert "data-drawn" not in re.search(r"<body([^>]*)>", dom).group(1)
