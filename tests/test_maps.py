"""Maps: the land mask read from the MODIS land cover that ships offline (known places),
the land and coastline drawn on the ground-track figure and the dashboard map (and a
map without them, said so, when the package is missing), station labels that do not
overlap where sites cluster (Svalbard, Tromsø, Kiruna; two Fairbanks antennas)."""

import io
import itertools
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from test_contacts_cli import SCENARIO

from orbitfl.analysis import dashboard, figures
from orbitfl.analysis.labels import place_labels
from orbitfl.analysis.style import PALETTE, cue
from orbitfl.analysis.styled import StyledRun
from orbitfl.cli import main
from orbitfl.constellation.stations import catalog
from orbitfl.core import landmask

# (lat, lon, land?) from an atlas, each well inside its land mass or ocean.
PLACES = [
    (23.0, 13.0, True),      # Sahara, southern Libya
    (-25.0, 134.0, True),    # central Australia
    (72.0, -40.0, True),     # Greenland ice sheet (IGBP snow and ice: land)
    (-80.0, 30.0, True),     # East Antarctica
    (55.0, 100.0, True),     # Siberia
    (0.0, -150.0, False),    # mid-Pacific
    (0.0, 0.0, False),       # Null Island, Gulf of Guinea
    (-40.0, -20.0, False),   # South Atlantic
    (35.0, 18.0, False),     # Ionian Sea
    (15.0, 65.0, False),     # Arabian Sea
]
# Clustered northern sites: Tromsø is KSAT's, not in the catalog (from its coordinates).
CLUSTER = ["svalsat", "kiruna", "fairbanks-asf", "fairbanks-planet", "inuvik", "trollsat"]


def _stations() -> pd.DataFrame:
    sites = catalog()
    rows = [{"id": s, "lat_deg": sites[s].lat_deg, "lon_deg": sites[s].lon_deg}
            for s in CLUSTER]
    return pd.DataFrame(rows + [{"id": "tromso-ksat", "lat_deg": 69.66, "lon_deg": 18.94}])


def _tracks() -> pd.DataFrame:
    return pd.DataFrame({"satellite": ["a"] * 50, "lat_deg": np.linspace(-80, 80, 50),
                         "lon_deg": np.linspace(-170, 170, 50)})


@pytest.mark.parametrize("cell", [0.25, 0.5, 1.0])
def test_land_mask_agrees_with_known_places(cell):
    mask = landmask.land_mask(cell)
    lat, lon, land = map(np.array, zip(*PLACES))
    assert mask.land.shape == (round(180 / cell), round(360 / cell))
    assert list(mask.at(lat, lon)) == list(land)
    assert list(mask.at(lat, lon + 360.0)) == list(land)  # longitudes wrap


def test_land_mask_cells_are_the_majority_of_the_full_grid():
    grid, mask = landmask.igbp_grid(), landmask.land_mask(0.5)
    row, col = 2 * (90 - 24), 2 * (180 + 12)  # the cell 23.5-24 N, 12-12.5 E
    block = grid[row * 10:(row + 1) * 10, col * 10:(col + 1) * 10]
    assert mask.land[row, col] == ((block != landmask.WATER).mean() >= 0.5)
    assert 0.25 < mask.land.mean() < 0.4  # land is about 30 % of the cells


def test_land_mask_without_the_package_is_none_and_bad_cells_are_refused():
    assert landmask.land_mask(0.5, "no_such_land_cover_package") is None
    with pytest.raises(ValueError, match="multiple of 0.05"):
        landmask.land_mask(0.07)


def test_the_map_figure_draws_land_and_coastline(tmp_path):
    fig, ax = plt.subplots(figsize=(10, 5.2), layout="constrained")
    figures.draw_tracks(ax, _tracks(), _stations())
    try:
        gids = {artist.get_gid() for artist in ax.get_children()}
        assert {"land", "coastline"} <= gids and "land-missing" not in gids
        fig.canvas.draw()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=50)
    finally:
        plt.close(fig)
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    land = np.array([int(figures.LAND[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - land).sum(axis=2) < 12).mean() > 0.1  # the fill is visible
    svg = figures.ground_tracks(_tracks(), _stations(), tmp_path / "map.svg").read_text()
    assert 'id="land"' in svg and 'id="coastline"' in svg


def test_tracks_are_one_collection_split_at_the_antimeridian():
    """Satellite a crosses the antimeridian once (two parts), b never: three parts in one
    collection, each satellite in its own colour of the declared palette (a part per colour
    gave one satellite several colours)."""
    tracks = pd.DataFrame({"satellite": ["a"] * 4 + ["b"] * 3,
                           "lon_deg": [170.0, 178.0, -176.0, -170.0, 0.0, 10.0, 20.0],
                           "lat_deg": [0.0, 1.0, 2.0, 3.0, -5.0, -4.0, -3.0]})
    fig, ax = plt.subplots()
    try:
        figures.draw_tracks(ax, tracks, _stations())
        (collection,) = [c for c in ax.collections if c.get_gid() == "tracks"]
        parts = [p.vertices.tolist() for p in collection.get_paths()]
        assert parts == [[[170.0, 0.0], [178.0, 1.0]], [[-176.0, 2.0], [-170.0, 3.0]],
                         [[0.0, -5.0], [10.0, -4.0], [20.0, -3.0]]]
        assert np.allclose(collection.get_colors()[:, :3],
                           [matplotlib.colors.to_rgb(c) for c in PALETTE[:1] * 2 + PALETTE[1:2]])
        assert not ax.get_lines()  # no artist per part
    finally:
        plt.close(fig)


def test_without_the_land_cover_the_map_says_so(monkeypatch, tmp_path, capsys, caplog):
    monkeypatch.setattr(figures, "land_mask", lambda cell=0.5: None)
    dashboard._land.cache_clear()
    try:
        fig, ax = plt.subplots()
        figures.draw_tracks(ax, _tracks(), _stations())
        texts = [t.get_text() for t in ax.texts]
        assert landmask.MISSING in texts
        assert "land" not in {artist.get_gid() for artist in ax.get_children()}
        plt.close(fig)
        run = _styled_run()
        view = dashboard._tracks([run])
        assert "images" not in view.layout or not view.layout.images
        assert landmask.MISSING in view.layout.title.text
    finally:
        dashboard._land.cache_clear()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    assert main(["contacts", str(scenario), "--out", str(tmp_path / "plan.csv"),
                 "--ground-track", str(tmp_path / "gt.png")]) == 0
    assert landmask.MISSING in capsys.readouterr().err + caplog.text  # the command's log
    assert (tmp_path / "gt.png").stat().st_size > 10_000


def _styled_run() -> StyledRun:
    """A run as the dashboard draws it, its data only the two tables the map reads."""
    data = SimpleNamespace(tracks=_tracks(), stations=_stations())
    return StyledRun(data, "r", cue(0))  # type: ignore[arg-type]


def _intersect(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("size", [(10, 5.2), (6, 3.2)])
def test_clustered_station_labels_do_not_overlap(size):
    stations = _stations()
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    figures.draw_tracks(ax, _tracks(), stations)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = [t for t in ax.texts if t.get_gid() == "station-label"]
        assert sorted(t.get_text() for t in labels) == sorted(stations["id"])
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in labels}
        # The cluster is real: at a fixed offset these labels would collide.
        fairbanks = boxes["fairbanks-asf"]
        anchors = ax.transData.transform(stations[["lon_deg", "lat_deg"]].to_numpy())
        assert np.abs(anchors[2] - anchors[3]).max() < fairbanks.height
        for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
            assert not _intersect(box_a, box_b), (a, b)
        axes_box = ax.get_window_extent(renderer)
        for name, box in boxes.items():  # and every label stays on the map
            assert axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1, name
    finally:
        plt.close(fig)


def test_placement_separates_labels_of_one_point_deterministically():
    points = np.zeros((6, 2))
    sizes = np.tile([40.0, 10.0], (6, 1))
    placed = place_labels(points, sizes)
    assert placed == place_labels(points, sizes)
    boxes = [p.box(0, 0, 40, 10) for p in placed]
    for a, b in itertools.combinations(boxes, 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    for box in boxes:  # and none covers the point's marker
        assert not (box[0] < 4 and -4 < box[2] and box[1] < 4 and -4 < box[3]), box


def test_the_dashboard_map_has_land_coastline_and_every_station_labelled():
    dashboard._land.cache_clear()
    run = _styled_run()
    view = dashboard._tracks([run, run])
    image = view.layout.images[0]
    assert image.source.startswith("data:image/png;base64,") and image.sizex == 360
    coast = [t for t in view.data if t.name == "coastline"]
    assert len(coast) == 1 and len(coast[0].x) > 1000
    assert sorted(a.text for a in view.layout.annotations) == sorted(_stations()["id"])
