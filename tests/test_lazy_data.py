"""Client data built lazily: the same tiles as rendering them all at once, whatever the
order of use; class counts without rendering; a byte-bounded cache; pickles that carry the
recipe, not the images."""

import io
import pickle

import numpy as np
import pytest
import torch

from orbitfl.core.cache_dir import read_entry, write_entry
from orbitfl.fl import lazy_data
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.geo.acquisition import GroundTrack
from orbitfl.fl.geo.tiles import CHANNEL_STD
from orbitfl.fl.lazy_data import ImageCache, LazyImageSet


def _tracks(n: int) -> list[GroundTrack]:
    """Hand-made sunlit tracks over different latitudes (land cover differs along them)."""
    t = np.arange(0.0, 1200.0, 60.0)
    return [GroundTrack(t, np.linspace(-50 + 7 * i, 50 - 3 * i, len(t)),
                        np.linspace(-170 + 40 * i, 170, len(t)), np.full(len(t), 40.0))
            for i in range(n)]


@pytest.fixture(autouse=True)
def fresh_cache():
    lazy_data.PROCESS_CACHE.clear()
    yield
    lazy_data.PROCESS_CACHE.clear()


@pytest.mark.parametrize("partition", ["orbit", "dirichlet"])
def test_lazy_clients_have_the_eager_tiles_in_any_order(tmp_path, partition):
    spec = DataSpec(image_size=16, partition=partition, min_per_client=1, test_per_class=2,
                    ses_per_class=1, cache=False)
    eager = build_federation(spec, 5, seed=4, tracks=_tracks(5), lazy=False)
    lazy = build_federation(spec, 5, seed=4, tracks=_tracks(5))
    assert all(isinstance(c, ImageSet) for c in eager.clients)
    assert all(isinstance(c, LazyImageSet) for c in lazy.clients)
    for c in reversed(range(5)):  # another order than the eager build's
        assert torch.equal(lazy.clients[c].images, eager.clients[c].images)
        assert torch.equal(lazy.clients[c].labels, eager.clients[c].labels)
    assert torch.equal(lazy.test.images, eager.test.images)
    # a second seed gives other tiles (the check above is not vacuous)
    other = build_federation(spec, 5, seed=5, tracks=_tracks(5))
    assert not torch.equal(other.clients[0].images, eager.clients[0].images)


def test_counts_sizes_and_partition_need_no_rendering(tmp_path, monkeypatch):
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1)
    monkeypatch.setenv("ORBITFL_CACHE_DIR", str(tmp_path))  # spec.cache_dir
    data = build_federation(spec, 6, seed=1, tracks=_tracks(6))
    before = lazy_data.PROCESS_CACHE.builds
    histograms = data.client_histograms()
    sizes = [len(c) for c in data.clients]
    assert lazy_data.PROCESS_CACHE.builds == before
    assert len(list((tmp_path / "tiles").glob("*.cache"))) == 2  # test set and SES only
    # the counts are those of the labels the tiles are rendered for
    for c, client in enumerate(data.clients):
        rendered = ImageSet(client.images, client.labels)
        assert np.array_equal(rendered.class_counts(data.classes), histograms[c])
        assert len(rendered.images) == sizes[c]
    assert len(list((tmp_path / "tiles").glob("*.cache"))) == 2 + 6  # spilled on first use


def test_tiles_come_back_from_the_disk_cache(tmp_path, monkeypatch):
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1)
    monkeypatch.setenv("ORBITFL_CACHE_DIR", str(tmp_path))  # spec.cache_dir
    data = build_federation(spec, 2, seed=1, tracks=_tracks(2))
    first = data.clients[1].images.clone()
    for path in (tmp_path / "tiles").glob("*.cache"):  # a marked copy on disk (a valid
        marked = read_entry(path, lambda b: np.load(io.BytesIO(b)) + np.float32(1.0))
        buffer = io.BytesIO()                           # entry) is what the next build
        np.save(buffer, marked)                         # must read back
        write_entry(path, buffer.getvalue())
    lazy_data.PROCESS_CACHE.clear()
    again = build_federation(spec, 2, seed=1, tracks=_tracks(2))
    assert torch.allclose(again.clients[1].images, first + 1.0 / CHANNEL_STD, atol=1e-4)


def test_the_cache_keeps_the_most_recent_sets_within_its_budget():
    cache = ImageCache(budget=2 * 400)              # two 100-float sets
    built = []

    def recipe(name):
        return lambda: built.append(name) or torch.full((100,), float(len(built)))

    cache.get("a", recipe("a"))
    cache.get("b", recipe("b"))
    cache.get("a", recipe("a"))                     # hit: a is now the most recent
    cache.get("c", recipe("c"))                     # evicts b, the least recent
    assert built == ["a", "b", "c"] and cache.held == 800 and len(cache) == 2
    cache.get("b", recipe("b"))                     # rebuilt; evicts a
    cache.get("c", recipe("c"))                     # still held
    assert built == ["a", "b", "c", "b"]
    cache.get("big", lambda: torch.zeros(1000))     # larger than the budget: not kept
    assert len(cache) == 2 and cache.held == 800


def test_memory_held_does_not_grow_with_the_fleet(monkeypatch):
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1, cache=False)
    data = build_federation(spec, 8, seed=2, tracks=_tracks(8))
    one = 3 * 16 * 16 * 4 * max(len(c) for c in data.clients)
    monkeypatch.setattr(lazy_data.PROCESS_CACHE, "budget", 2 * one)
    for client in data.clients:
        assert client.images.shape[0] == len(client)
    assert lazy_data.PROCESS_CACHE.held <= 2 * one and len(lazy_data.PROCESS_CACHE) <= 2


def test_a_pickled_client_carries_its_recipe_not_its_images(tmp_path):
    spec = DataSpec(image_size=32, test_per_class=1, ses_per_class=1, cache=False)
    data = build_federation(spec, 1, seed=3, tracks=_tracks(1))
    client = data.clients[0]
    images = client.images.clone()                 # built and cached in this process
    blob = pickle.dumps(client)
    assert len(blob) < images.nelement() * images.element_size() / 4
    lazy_data.PROCESS_CACHE.clear()
    received = pickle.loads(blob)
    assert torch.equal(received.images, images)


def test_a_lazy_subset_stays_lazy_and_takes_the_right_rows():
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1, cache=False)
    data = build_federation(spec, 1, seed=3, tracks=_tracks(1))
    client = data.clients[0]
    rows = np.array([3, 0, 2])
    part = client.subset(rows)
    assert isinstance(part, LazyImageSet) and len(part) == 3
    assert torch.equal(part.labels, client.labels[rows])
    assert torch.equal(part.images, client.images[torch.as_tensor(rows)])


def test_a_held_out_validation_split_is_the_same_from_lazy_clients():
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1, cache=False,
                    validation_fraction=0.25)
    eager = build_federation(spec, 3, seed=6, tracks=_tracks(3), lazy=False)
    lazy = build_federation(spec, 3, seed=6, tracks=_tracks(3))
    assert torch.equal(lazy.validation.images, eager.validation.images)
    for a, b in zip(lazy.clients, eager.clients):
        assert isinstance(a, LazyImageSet) and torch.equal(a.images, b.images)
