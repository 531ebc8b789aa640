"""A tile is a function of its labels, Sun elevations and seed only, never of the process
that renders it: clouded tiles once drew their ground in the iteration order of a set of
functions (their memory addresses), so a Ray actor or pool worker rendering a client's
lazy tiles got other images than the serial run for the same seed."""

from __future__ import annotations

import numpy as np

import orbitfl.fl.geo.tiles as tiles

GROUNDS = ("_water", "_forest", "_grass", "_barren", "_crop")


def render_clouds(seed: int) -> np.ndarray:
    labels = np.full(40, tiles.SCENE_CLASSES.index("cloud"))
    return tiles.render(labels, np.full(40, 40.0), 16, np.random.default_rng(seed))


def test_clouded_tiles_do_not_depend_on_where_the_ground_generators_live(monkeypatch):
    reference = render_clouds(3)
    assert np.array_equal(reference, render_clouds(3))
    keep = []   # fresh function objects at new addresses (a new process's layout)
    for attempt in range(6):
        for name in GROUNDS:
            original = getattr(tiles, name)
            moved = (lambda f: lambda n, s, rng: f(n, s, rng))(original)
            keep.append(moved)
            monkeypatch.setattr(tiles, name, moved)
        assert np.array_equal(render_clouds(3), reference), f"attempt {attempt}"
        monkeypatch.undo()
    assert not np.array_equal(render_clouds(4), reference)   # the seed still matters
