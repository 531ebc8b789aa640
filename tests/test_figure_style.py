"""Figure styles on hand-made tables (no run needed): the declared Okabe-Ito palette and its
second cues, crowded figures whose labels must not collide in any style (12 payload kinds,
20 stations with long names), zero-byte kinds left out, the paper and slides geometry, the
UTC span in map titles, and TrueType fonts in saved PDFs."""

import itertools
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from orbitfl.analysis import figures, report, run_model
from orbitfl.analysis.style import (
    HATCHES,
    PALETTE,
    STYLES,
    category_cue,
    cue,
    current_style,
    figure_style,
)
from orbitfl.analysis.styled import StyledRun, styled
from orbitfl.core.errors import InputError

OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"}  # Okabe & Ito (2008), as published
KINDS = [f"payload-kind-with-a-long-name-{i:02d}" for i in range(12)]
ZERO = "never-moved-kind"
STATIONS = [f"ground-station-number-{i:02d}-of-a-long-named-network" for i in range(20)]


def _hex(colour) -> str:
    return matplotlib.colors.to_hex(colour).upper()


def _run(name: str, scale: float) -> run_model.Run:
    """A run with 12 payload kinds whose bytes span six decades (each in both directions)
    and one kind that moved nothing, in its transfers and its rounds."""
    rows = []
    for i, kind in enumerate(KINDS):
        for src, dst in (("ground", "sat-1"), ("sat-1", "ground")):
            rows.append((kind, int(scale * 10 ** (i / 2)), src, dst, "delivered"))
    rows.append((ZERO, 0, "sat-1", "ground", "delivered"))
    transfers = pd.DataFrame(rows, columns=["kind", "bytes", "src", "dst", "status"])
    rounds = pd.DataFrame({"round": [0, 1, 2], "sim_time_s": [0.0, 3600.0, 7200.0],
                           "accuracy": [0.1, 0.2, 0.3], "bytes_up": [0, 5, 9],
                           "bytes_down": [0, 5, 9]})
    for i, kind in enumerate(KINDS):
        for direction in ("up", "down"):
            rounds[f"bytes_{direction}_{kind}"] = [0.0, scale * 10 ** (i / 2), 2e6]
    for direction in ("up", "down"):
        rounds[f"bytes_{direction}_{ZERO}"] = 0.0
    return run_model.Run(Path(name), {}, name=name, tables={
        "rounds": rounds, "transfers": transfers, "contacts": pd.DataFrame()})


def _runs() -> list[StyledRun]:
    return styled([_run("first-run-with-a-long-name", 1.0), _run("second-run", 3.0)])


def _gantt_contacts() -> pd.DataFrame:
    """Six satellites, each seeing all 20 stations once, a pass every 20 minutes."""
    rows = [(f"SAT-{s}", station, 1200.0 * (s * 20 + i), 600.0)
            for s in range(6) for i, station in enumerate(STATIONS)]
    return pd.DataFrame(rows, columns=["satellite", "station", "start_s", "duration_s"])


def _texts(fig) -> list:
    """Every piece of text the figure shows: titles, axis labels, the tick labels within
    each axis's view, annotations and bar labels, legend entries and titles."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            out += [tick.label1 for tick in axis.get_major_ticks()
                    if lo <= tick.get_loc() <= hi]
        if ax.get_legend() is not None:
            out += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    for legend in fig.legends:
        out += [*legend.get_texts(), legend.get_title()]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def _assert_no_overlap(fig) -> None:
    with warnings.catch_warnings():  # a layout that gave up is a failure too
        warnings.simplefilter("error")
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _texts(fig)]
    assert len(boxes) > 20
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap = (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0),
                   min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0))
        assert min(overlap) <= 0.5, (a, b)  # half a pixel: shared edges of adjacent rows


def test_a_reports_looks_are_apart_from_the_runs_data():
    """Issue 24: a run is data (``run_model.Run``); the label and cue a report gives it are
    the report's (``styled``): runs of one scenario are told apart by their folders, each
    run in order gets the next look, and the runs themselves are left as they were."""
    runs = [run_model.Run(Path(folder), {}, name=name, tables={})
            for folder, name in (("runs/a", "same"), ("runs/b", "same"), ("runs/c", "other"))]
    looks = styled(runs)
    assert [s.name for s in looks] == ["same (a)", "same (b)", "other"]
    assert [s.cue for s in looks] == [cue(0), cue(1), cue(2)]
    assert looks[1].colour == cue(1).colour and looks[1].data is runs[1]
    assert [r.name for r in runs] == ["same", "same", "other"]
    assert not hasattr(runs[0], "colour") and not hasattr(runs[0], "cue")


def test_the_palette_is_okabe_ito_with_a_second_cue():
    assert {c.upper() for c in PALETTE} == OKABE_ITO and len(PALETTE) == 8
    looks = [cue(i) for i in range(56)]
    assert {look.colour for look in looks} == set(PALETTE)
    # colour and second cue change together: no two of 56 series look alike
    assert len({(look.colour, look.marker) for look in looks}) == 56
    assert len({(look.colour, look.linestyle) for look in looks}) == 56
    assert all(cue(i).marker != cue(i + 1).marker for i in range(55))
    with figure_style("paper"):
        assert [_hex(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]] == \
            [c.upper() for c in PALETTE]


def test_stations_repeat_a_colour_only_with_another_hatch():
    looks = figures.station_cues(STATIONS)
    pairs = [(looks[s].colour, looks[s].hatch) for s in STATIONS]
    assert len(set(pairs)) == 20
    assert [looks[s].hatch for s in STATIONS[:8]] == [""] * 8  # plain colours first
    assert looks[STATIONS[8]].colour == looks[STATIONS[0]].colour
    assert looks[STATIONS[8]].hatch == HATCHES[1] == category_cue(8).hatch


@pytest.mark.parametrize("style", list(STYLES))
def test_a_crowded_gantt_keeps_its_labels_apart_in_the_declared_palette(style):
    contacts = _gantt_contacts()
    with figure_style(style):
        fig = figures.gantt_figure(contacts)
        ax = fig.axes[0]
        try:
            _assert_no_overlap(fig)
            bars = {c.get_gid(): c for c in ax.collections}
            assert len(bars) == 20
            for i, station in enumerate(sorted(STATIONS)):
                colour = bars[f"gantt-{station}"].get_facecolor()[0]
                assert _hex(colour) == PALETTE[i % 8].upper(), station
                assert (bars[f"gantt-{station}"].get_hatch() or "") == HATCHES[i // 8]
        finally:
            plt.close(fig)


@pytest.mark.parametrize("style", list(STYLES))
def test_bytes_by_kind_with_twelve_kinds_keeps_labels_apart_and_drops_zero_kinds(style):
    runs = _runs()
    with figure_style(style):
        fig = report.VIEWS["bytes_by_kind"](runs)
        try:
            _assert_no_overlap(fig)
            for ax in fig.axes[:2]:
                names = [t.get_text() for t in ax.get_yticklabels()]
                assert names[0] == "total" and len(names) == 13
                assert ZERO not in names
                assert ax.get_xscale() == "log"  # 10^0 .. 10^5.5 bytes
            assert [t.get_text() for t in fig.legends[0].get_texts()] == [r.name for r in runs]
        finally:
            plt.close(fig)


def test_cumulative_bytes_lists_every_kind_but_the_zero_one_each_in_its_own_style():
    runs = _runs()
    fig = report.VIEWS["bytes_vs_time"](runs)
    try:
        (legend,) = fig.legends
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == [r.name for r in runs] + sorted(KINDS)
        # (the dash pattern itself: get_linestyle() names any custom pattern '--')
        dashes = {str(handle._unscaled_dash_pattern) for handle in legend.legend_handles[2:]}
        assert len(dashes) == 7  # all seven line styles (four before) for twelve kinds
        assert all(ax.get_yscale() == "log" for ax in fig.axes[:2])
        for ax in fig.axes[:2]:
            assert len(ax.get_lines()) == 2 * len(KINDS)  # the zero kind is not drawn
    finally:
        plt.close(fig)


def test_paper_and_slides_geometry():
    paper, slides = STYLES["paper"], STYLES["slides"]
    assert paper.size()[0] == 3.5 and paper.size(cols=2)[0] == 7.16
    assert paper.size(wide=True)[0] == 7.16
    width, height = slides.size(cols=3, rows=2)
    assert width == 13.33 and height / width == pytest.approx(9 / 16, rel=1e-3)  # 16:9
    assert min(paper.font, paper.small, paper.tiny, paper.title) >= 7
    assert paper.font <= paper.title <= 9
    with figure_style("paper"):
        assert plt.rcParams["pdf.fonttype"] == 42 and plt.rcParams["font.size"] == 8
        fig = report.VIEWS["bytes_vs_time"](_runs())
        assert fig.get_size_inches()[0] == pytest.approx(7.16)
        plt.close(fig)
    assert current_style().name == "screen"  # the block's style ends with it
    with pytest.raises(InputError, match="'poster'.*screen, paper, slides"):
        with figure_style("poster"):
            pass


def test_map_titles_state_the_utc_span():
    tracks = pd.DataFrame({"satellite": ["a"] * 3, "t_s": [0.0, 21600.0, 43200.0],
                           "lat_deg": [0.0, 1.0, 2.0], "lon_deg": [0.0, 1.0, 2.0]})
    assert figures.time_span(tracks, "2024-07-16T06:00:00Z") == \
        "2024-07-16 06:00 to 18:00 UTC"
    assert figures.time_span(tracks, "2024-07-16T20:00:00+02:00") == \
        "2024-07-16 18:00 to 2024-07-17 06:00 UTC"  # a zone is converted to UTC
    assert figures.time_span(tracks.assign(t_s=tracks["t_s"] + 1800), None) == \
        "0.5 h to 12.5 h after the epoch"
    fig, ax = plt.subplots()
    try:
        figures.draw_tracks(ax, tracks, pd.DataFrame(columns=["id", "lat_deg", "lon_deg"]),
                            epoch="2024-07-16T06:00:00Z")
        assert ax.get_title().endswith("\n2024-07-16 06:00 to 18:00 UTC")
    finally:
        plt.close(fig)


def test_saved_pdfs_embed_truetype_never_type3(tmp_path):
    """The check can fail: matplotlib's default (Type 3) is caught, and every figure saved
    through ``save_formats`` embeds TrueType, whatever style drew it."""
    fig, ax = plt.subplots()
    ax.set_title("Type 3 by default")
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        fig.savefig(tmp_path / "default.pdf")
    assert b"/Subtype /Type3" in (tmp_path / "default.pdf").read_bytes()
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        fig, ax = plt.subplots()
        ax.set_title("drawn outside any style")
        (pdf,) = figures.save_formats(fig, tmp_path / "saved", ("pdf",))
    data = pdf.read_bytes()
    assert b"/Type3" not in data and b"/FontType 3" not in data
    assert b"/FontFile2" in data  # the TrueType program itself is embedded


def test_contacts_draws_in_the_chosen_style_and_refuses_an_unknown_one(tmp_path, capsys):
    """``orbitfl contacts --style paper``: the Gantt chart and the map two columns wide;
    an unknown style through the API is refused before the table is written."""
    import yaml
    from PIL import Image
    from test_contacts_cli import SCENARIO

    from orbitfl.cli import main
    from orbitfl.commands.contacts_report import write_contacts

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "plan.csv"), "--gantt",
                 str(tmp_path / "gantt.png"), "--ground-track", str(tmp_path / "map.png"),
                 "--style", "paper"]) == 0
    for png in ("gantt.png", "map.png"):
        assert Image.open(tmp_path / png).size[0] == round(7.16 * 200), png
    with pytest.raises(InputError, match="poster"):
        write_contacts(scenario, tmp_path / "other.csv", style="poster")
    assert not (tmp_path / "other.csv").exists()
