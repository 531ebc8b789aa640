"""The report's figures: every view for several runs in every format, class names, one
colour per run, byte bars per kind and direction, per-pass link use against the transfers,
``--force`` and ``--style``."""

import json
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.colors import to_hex
from PIL import Image
from test_end_to_end import TINY

from orbitfl.analysis import report, report_folder, run_data, run_model
from orbitfl.analysis.style import PALETTE
from orbitfl.analysis.styled import StyledRun, styled
from orbitfl.cli import main
from orbitfl.engine import runner

NAMES = ["cropland", "forest $x$", "water", "urban"]  # '$': drawn literally, not as math
UNITS = {"GB": 1e9, "MB": 1e6, "kB": 1e3, "bytes": 1}
HEADERS = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny runs of different scenarios, their manifests given land-cover-like class
    names (after checking that the runs recorded their data set's own)."""
    base = tmp_path_factory.mktemp("figures")
    runs = []
    with pytest.MonkeyPatch.context() as patch:  # the runs' own reports: not needed here
        patch.setattr(runner, "write_report", lambda *args, **kwargs: [])
        for name, seed in (("alpha", 3), ("beta", 4)):
            scenario = base / f"{name}.yaml"
            scenario.write_text(yaml.safe_dump({**TINY, "name": name, "seed": seed,
                                                "fl": {**TINY["fl"], "rounds": 1}}))
            assert main(["run", str(scenario), "--out", str(base / name)]) == 0
            runs.append(base / name)
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["class_names"] == [f"class_{c}" for c in range(4)]
        (run / "manifest.json").write_text(json.dumps({**manifest, "class_names": NAMES}))
    return runs[0], runs[1]


@pytest.fixture(scope="module")
def full_report(two_runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "rep"
    assert main(["report", *map(str, two_runs), "--out", str(out),
                 "--format", "png,svg,pdf"]) == 0
    return out


def test_every_view_is_written_in_every_format(full_report):
    for view in report.VIEWS:
        for fmt, header in HEADERS.items():
            path = full_report / f"{view}.{fmt}"
            assert path.read_bytes().startswith(header), path
        dpi = Image.open(full_report / f"{view}.png").info["dpi"]
        assert min(dpi) >= 199, (view, dpi)  # was 120 dpi
    listed = json.loads((full_report / report_folder.MARKER).read_text())["files"]
    assert {f"{view}.svg" for view in report.VIEWS} <= set(listed)


def test_every_pdf_of_a_report_embeds_truetype_never_type3(full_report):
    """Publishers' checkers reject Type 3 fonts (matplotlib's default)."""
    pdfs = sorted(full_report.glob("*.pdf"))
    assert len(pdfs) == len(report.VIEWS)
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert b"/Type3" not in data and b"/FontType 3" not in data, pdf.name
        assert b"/FontFile2" in data, pdf.name  # TrueType, embedded


@pytest.mark.filterwarnings("error::UserWarning")  # e.g. a layout that gave up
def test_paper_style_report_has_column_widths_and_the_palette(two_runs, tmp_path,
                                                              monkeypatch):
    """``orbitfl report --style paper``: every figure one column (3.5 in) or two (7.16 in)
    wide and laid out, runs drawn in the declared palette, each with its own marker, the
    Gantt bars in the palette too."""
    drawn = {}
    save = report.save_formats

    def keep(fig, stem, formats):
        drawn[stem.name] = {
            "lines": [(line.get_color(), line.get_marker()) for line in fig.axes[0].lines
                      if line.get_marker() not in ("None", "*")],
            "bars": [to_hex(c.get_facecolor()[0]).upper() for ax in fig.axes
                     for c in ax.collections if str(c.get_gid()).startswith("gantt-")]}
        return save(fig, stem, formats)

    monkeypatch.setattr(report, "save_formats", keep)
    out = tmp_path / "paper"
    assert main(["report", *map(str, two_runs), "--out", str(out), "--style", "paper"]) == 0
    for view in report.VIEWS:
        width = Image.open(out / f"{view}.png").size[0] / 200
        assert width == pytest.approx(7.16 if view != "per_class_accuracy" else 3.5), view
    lines = drawn["accuracy_vs_bytes"]["lines"]
    assert [to_hex(c).upper() for c, _ in lines] == [c.upper() for c in PALETTE[:2]]
    assert lines[0][1] != lines[1][1]  # a second cue beside the colour
    assert drawn["contact_gantt"]["bars"] and \
        set(drawn["contact_gantt"]["bars"]) <= {c.upper() for c in PALETTE}


def test_class_names_are_drawn_and_older_runs_fall_back(full_report):
    svg = (full_report / "per_class_accuracy.svg").read_text()
    for name in NAMES:
        assert name in svg, name
    from orbitfl.analysis.figures import class_names

    assert class_names({}, 3) == ["class 0", "class 1", "class 2"]


def test_multi_run_views_show_every_run(full_report):
    """Gantt, map and battery showed the first run only."""
    for view in ("contact_gantt", "ground_tracks", "battery", "energy_per_satellite",
                 "link_utilisation", "bytes_by_kind", "accuracy_vs_energy",
                 "round_breakdown", "bytes_vs_time", "per_class_accuracy"):
        svg = (full_report / f"{view}.svg").read_text()
        assert "alpha" in svg and "beta" in svg, view


def _runs(two_runs) -> list[StyledRun]:
    return styled([run_model.load_run(p) for p in two_runs])


def test_bytes_by_kind_bars_add_up_with_directions_apart(two_runs):
    """Up and down were summed together, and segment labels inside stacked bars collided:
    now one horizontal bar per kind and run (kinds named on the axis), the total first,
    each run's kinds adding up to what it delivered; logarithmic only when the bars span
    more than two decades."""
    runs = _runs(two_runs)
    fig = report.VIEWS["bytes_by_kind"](runs)
    try:
        up, down = fig.axes[:2]
        for ax, column in ((up, "bytes_up"), (down, "bytes_down")):
            unit = UNITS[ax.get_xlabel().split()[0]]
            assert [t.get_text() for t in ax.get_yticklabels()][0] == "total"
            assert len(ax.containers) == len(runs)  # one set of bars per run
            for bars, run in zip(ax.containers, runs):
                delivered = run.data.rounds[column].iloc[-1]
                widths = [bar.get_width() * unit for bar in bars]
                assert widths[0] == pytest.approx(delivered) and delivered > 0, column
                assert sum(widths[1:]) == pytest.approx(delivered), column
            widths = np.array([bar.get_width() for bars in ax.containers for bar in bars])
            spread = widths.max() / widths[widths > 0].min()
            assert ax.get_xscale() == ("log" if spread > 100 else "linear"), spread
    finally:
        plt.close(fig)


def test_per_class_accuracy_is_named_bars(two_runs):
    """Class indices were joined by a line and never named."""
    runs = _runs(two_runs)
    fig = report.VIEWS["per_class_accuracy"](runs)
    try:
        ax = fig.axes[0]
        assert not ax.get_lines() and len(ax.patches) == 8
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "cropland", r"forest \$x\$", "water", "urban"]  # '$' escaped: no mathtext
        last = runs[1].data.evaluated.iloc[-1]["per_class_accuracy"]
        beta = [p.get_height() for p in ax.containers[1]]
        assert np.allclose(beta, 100 * np.asarray(last))
    finally:
        plt.close(fig)


def test_pass_utilisation_accounts_for_every_ground_byte(two_runs):
    run = run_model.load_run(two_runs[0])
    table = run_data.pass_utilisation(run)
    t = run.transfers
    ground = t[(t["src"] == "ground") | (t["dst"] == "ground")]
    for direction, mine in (("up", ground[ground["src"] == "ground"]),
                            ("down", ground[ground["dst"] == "ground"])):
        truth = sum(float(np.sum(b)) for b in mine["bytes_per_pass"] if b is not None)
        got = table.loc[table["direction"] == direction, "moved"].sum()
        assert got == pytest.approx(truth) and truth > 0, direction
    assert (table["moved"] <= table["capacity"] * (1 + 1e-9)).all()
    assert len(table) == 2 * len(run.contacts)


def test_report_refuses_a_foreign_non_empty_folder_unless_forced(two_runs, full_report,
                                                                   tmp_path, capsys,
                                                                   monkeypatch):
    """``orbitfl report`` silently wrote over whatever ``--out`` held."""
    calls = []
    monkeypatch.setattr(report, "write_report", lambda runs, out, formats, style:
                        calls.append((out, formats, style)) or [])
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine")
    args = ["report", str(two_runs[0]), "--out", str(folder)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--force" in err and str(folder) in err
    assert not calls and (folder / "thesis.tex").read_text() == "mine"
    assert main([*args, "--force", "--format", "svg,pdf", "--style", "paper"]) == 0
    assert calls == [(folder, ("svg", "pdf"), "paper")]
    assert main(["report", str(two_runs[0]), "--out", str(full_report)]) == 0  # earlier report


def test_report_format_must_be_known(two_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(two_runs[0]), "--out", str(tmp_path / "r"), "--format", "png,gif"])
    assert exit_.value.code == 2 and "gif" in capsys.readouterr().err


def test_every_view_lays_out_with_a_long_mathy_run_name(two_runs):
    """A 60-character run name in an empty panel's note squeezed the panels to nothing
    (constrained layout gave up, with a warning, and the figure was unreadable)."""
    runs = _runs(two_runs)
    runs[0] = replace(runs[0], name="fuel $x^$ " + "y" * 150)
    for name, view in report.VIEWS.items():
        fig = view(runs)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                fig.draw_without_rendering()
        finally:
            plt.close(fig)


def _breakdown_run() -> run_data.Run:
    """One round, [0, 1000] s, closed by job 7's update: its model goes up 100-150 s in a
    pass [90, 200] s; it trains 10 s but queues its update only at 400 s (charging); the
    update is on the air 500-520 s (end of a pass) and 950-1000 s (the next pass)."""
    rounds = pd.DataFrame({"round": [0, 1], "opened_s": [0.0, 0.0],
                           "sim_time_s": [0.0, 1000.0], "accuracy": [0.1, 0.2],
                           "bytes_up": [0, 10], "bytes_down": [0, 10]})
    clients = pd.DataFrame({"job": [7, 8], "satellite": ["s", "s2"], "selected_s": [0.0, 0.0],
                            "payload_received_s": [150.0, 20.0], "training_s": [10.0, 5.0],
                            "update_delivered_s": [1000.0, 40.0],
                            "aggregated": [True, False]})
    transfers = pd.DataFrame({
        "kind": ["weights", "weights"], "bytes": [10, 10], "src": ["ground", "s"],
        "dst": ["s", "ground"], "status": ["delivered"] * 2, "job": [7, 7],
        "requested_s": [0.0, 400.0], "start_s": [100.0, 500.0], "end_s": [150.0, 1000.0],
        "via": [["A"], ["A", "B"]]})
    contacts = pd.DataFrame({"satellite": ["s", "s", "s", "s"], "station": ["A", "A", "B", "C"],
                             "start_s": [90.0, 480.0, 950.0, 600.0],
                             "duration_s": [110.0, 40.0, 60.0, 100.0],
                             "end_s": [200.0, 520.0, 1010.0, 700.0]})
    return run_model.Run(Path("hand"), {}, name="hand", tables={
        "rounds": rounds, "transfers": transfers, "contacts": contacts, "clients": clients})


def test_round_breakdown_by_hand():
    """Uplink on the air 50 s, downlink 20 + 50 s (the pass with station C is not its own),
    training 10 s, charging 240 s, the rest of the 1000 s waiting for a contact."""
    table = run_data.round_breakdown(_breakdown_run())
    assert list(table.index) == [1]
    assert table.loc[1].to_dict() == pytest.approx({
        "waiting for a contact": 630.0, "transfer": 120.0, "battery": 240.0,
        "training": 10.0, "no update in time": 0.0})


def test_a_round_no_update_closed_is_said_so():
    run = _breakdown_run()
    run.clients["aggregated"] = False
    assert run_data.round_breakdown(run).loc[1, "no update in time"] == 1000.0


def test_round_breakdown_of_real_runs_adds_up_to_each_round(two_runs):
    for path in two_runs:
        run = run_model.load_run(path)
        table = run_data.round_breakdown(run)
        rounds = run.rounds.set_index("round").loc[table.index]
        assert len(table) == len(run.rounds) - 1 and (table >= 0).all().all()
        assert np.allclose(table.sum(axis=1), rounds["sim_time_s"] - rounds["opened_s"])
        assert (table["transfer"] > 0).all() and (table["training"] > 0).all()
