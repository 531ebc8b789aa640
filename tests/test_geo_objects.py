"""geo-synthetic-objects (issue 23): drawn objects at a set share of each tile, their class's
shape, the long tail, the balanced validation set apart from every other set, determinism
from the seed, and one-line refusals of bad settings."""

import hashlib

import numpy as np
import pytest
import torch
import yaml
from test_data import _folder_dataset

from orbitfl.core.errors import InputError
from orbitfl.fl.config import DataSpec
from orbitfl.fl.federation import build_federation
from orbitfl.fl.geo.acquisition import GroundTrack
from orbitfl.fl.geo.object_tiles import object_tiles
from orbitfl.fl.geo.objects import OBJECT_CLASSES, paint_objects
from orbitfl.scenario import load_scenario

from conftest import SCENARIOS

C = len(OBJECT_CLASSES)


def tracks(n: int, samples: int = 60) -> list[GroundTrack]:
    """Plain sinusoidal tracks, sunlit throughout (no orbit code needed)."""
    t = np.arange(samples) * 120.0
    return [GroundTrack(t, 50.0 * np.sin(t / 900.0 + i), (t / 30.0 + 37.0 * i) % 360 - 180,
                        np.full(samples, 40.0)) for i in range(n)]


def spec(**changes) -> DataSpec:
    base = dict(dataset="geo-synthetic-objects", partition="dirichlet", imbalance_ratio=10,
                samples_per_class_max=30, test_per_class=4, ses_per_class=2,
                validation_per_class=3, cache=False)
    return DataSpec(**{**base, **changes})


@pytest.mark.parametrize("size, fraction", [(32, 0.05), (32, 0.2), (64, 0.01)])
def test_objects_cover_their_share_of_every_tile(size, fraction):
    """Measured on the painted image, not the returned mask: on a black ground the changed
    pixels are the object. Each of 300 tiles (every class) is within half a pixel of the
    setting (the rounding to whole pixels), so the mean is too."""
    rng = np.random.default_rng(3)
    classes = np.arange(300) % C
    painted, mask = paint_objects(np.zeros((300, 3, size, size)), classes, fraction, rng)
    share = (painted != 0).any(axis=1).mean(axis=(1, 2))
    assert np.all(np.abs(share - fraction) <= 0.5 / size**2)
    assert np.array_equal((painted != 0).any(axis=1), mask)


def test_rendered_tiles_keep_the_share_and_label_the_objects():
    rng = np.random.default_rng(4)
    classes = np.arange(40) % C
    lat, lon = rng.uniform(-60, 60, 40), rng.uniform(-180, 180, 40)
    images, masks = object_tiles(classes, lat, lon, np.full(40, 45.0), 32, 0.08, rng)
    assert images.shape == (40, 3, 32, 32) and images.dtype == np.float32
    assert np.all((masks > 0).sum(axis=(1, 2)) == round(0.08 * 32 * 32))
    # the mask names the tile's class where the object is, background (0) elsewhere
    assert all(set(np.unique(m)) == {0, c + 1} for m, c in zip(masks, classes))


def _elongation(mask: np.ndarray) -> float:
    """Ratio of the principal second moments of a foreground (1 for a disc)."""
    yx = np.argwhere(mask).astype(float)
    eig = np.linalg.eigvalsh(np.cov(yx.T))
    return eig[1] / eig[0]


def test_each_class_keeps_its_shape():
    """A ship is an ellipse of axis ratio 5 (second moments in ratio 25); a pivot field is a
    disc (ratio 1); a bridge is a bar 10 times longer than wide (ratio 100)."""
    rng = np.random.default_rng(5)
    n = 30
    for name, low, high in (("ship", 15, 35), ("pivot_field", 1.0, 1.3), ("bridge", 50, 200)):
        classes = np.full(n, OBJECT_CLASSES.index(name))
        _, mask = paint_objects(np.zeros((n, 3, 64, 64)), classes, 0.05, rng)
        ratios = [_elongation(m) for m in mask]
        assert low < np.median(ratios) < high, (name, np.median(ratios))


def test_class_counts_follow_the_long_tail_and_clients_differ():
    """Per-class counts n_c = floor(200 * 100^(-r/9)) by rank r (hand-computed below),
    whichever classes the seed makes rare; Dirichlet(0.5) clients hold different mixes."""
    data = build_federation(spec(samples_per_class_max=200, imbalance_ratio=100,
                                 validation_per_class=None), 4, 7, tracks(4))
    counts = data.train_class_counts()
    assert sorted(counts, reverse=True) == [200, 119, 71, 43, 25, 15, 9, 5, 3, 2]
    shares = data.client_histograms() / data.client_histograms().sum(axis=1, keepdims=True)
    assert 0.5 * np.abs(shares[0] - shares[1]).sum() > 0.2


def _hashes(images) -> set[str]:
    return {hashlib.sha256(np.ascontiguousarray(im.numpy()).tobytes()).hexdigest()
            for im in images}


@pytest.mark.parametrize("dataset", ["geo-synthetic-objects", "synthetic"])
def test_balanced_validation_covers_every_class_and_shares_no_image(dataset):
    extra = {} if dataset != "synthetic" else {"dataset": "synthetic", "image_size": 16}
    data = build_federation(spec(**extra), 3, 2, tracks(3))
    val = data.validation
    assert np.array_equal(val.class_counts(data.classes), np.full(data.classes, 3))
    seen = _hashes(val.images)
    assert len(seen) == len(val)
    others = [data.test, data.ses, *data.clients]
    for other in others:
        assert not seen & _hashes(other.images)


def test_a_folder_dataset_carves_its_balanced_validation_set_out(tmp_path):
    """Folders: the validation images are set apart per class before the long tail, like
    the test set and the SES (12 images a class: 3 test, 2 SES, 2 validation, 5 pool)."""
    _folder_dataset(tmp_path / "2750", classes=10, per_class=12)
    data = build_federation(DataSpec(dataset="eurosat", path=tmp_path, image_size=16,
                                     partition="iid", ses_per_class=2, test_per_class=3,
                                     validation_per_class=2), 3, seed=0)
    assert np.array_equal(data.validation.class_counts(10), np.full(10, 2))
    assert data.train_class_counts().sum() == 50
    seen = _hashes(data.validation.images)
    assert len(seen) == 20
    for other in [data.test, data.ses, *data.clients]:
        assert not seen & _hashes(other.images)


def test_no_balanced_validation_for_multi_class_segmentation_tiles():
    with pytest.raises(ValueError, match="'validation_per_class' needs a class per image"):
        DataSpec(dataset="geo-synthetic", task="segmentation", validation_per_class=5)


def test_the_per_client_hold_out_still_works():
    """validation_fraction keeps floor(0.2 n) of each client's n images out of training."""
    whole = build_federation(spec(validation_per_class=None), 3, 2, tracks(3))
    data = build_federation(spec(validation_per_class=None, validation_fraction=0.2), 3, 2,
                            tracks(3))
    sizes = [len(c) for c in whole.clients]
    assert len(data.validation) == sum(n // 5 for n in sizes)
    assert [len(c) for c in data.clients] == [n - n // 5 for n in sizes]
    assert not _hashes(data.validation.images) & set().union(
        *(_hashes(c.images) for c in data.clients))


def test_segmentation_masks_mark_background_and_object_class():
    data = build_federation(spec(task="segmentation", validation_per_class=None,
                                 imbalance_ratio=1, samples_per_class_max=4), 2, 1, tracks(2))
    assert data.classes == C + 1 and data.class_names[0] == "background"
    pixels = data.train_class_counts()
    assert pixels[1:].sum() == round(0.05 * 32 * 32) * 4 * C   # every tile its object
    assert pixels[0] == (32 * 32 - round(0.05 * 32 * 32)) * 4 * C


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_every_set_carries_its_objects_as_ground_truth(task):
    """``ImageSet.foreground``: the object pixels the generator drew, for diagnostics (ACE's
    mask against them), at the set share of every tile, and on segmentation tiles exactly
    the labelled pixels; a subset keeps its rows' truth."""
    data = build_federation(spec(task=task, validation_per_class=None, imbalance_ratio=1,
                                 samples_per_class_max=4), 2, 1, tracks(2))
    for images in (data.test, data.ses, *data.clients):
        assert images.foreground.shape == (len(images), 32, 32)
        assert images.foreground.dtype == torch.bool
        assert (images.foreground.sum(dim=(1, 2)) == round(0.05 * 32 * 32)).all()
        if task == "segmentation":
            assert torch.equal(images.foreground, images.labels > 0)
    rows = np.array([2, 0])
    assert torch.equal(data.test.subset(rows).foreground, data.test.foreground[rows])


def test_one_seed_decides_everything():
    a = build_federation(spec(), 3, 11, tracks(3))
    b = build_federation(spec(), 3, 11, tracks(3))
    other = build_federation(spec(), 3, 12, tracks(3))
    for x, y, z in zip([a.test, a.validation, a.ses, *a.clients],
                       [b.test, b.validation, b.ses, *b.clients],
                       [other.test, other.validation, other.ses, *other.clients]):
        assert x.images.equal(y.images) and x.labels.equal(y.labels)
        assert not (x.images.shape == z.images.shape and x.images.equal(z.images))


def test_the_cache_gives_the_same_tiles(tmp_path, monkeypatch):
    monkeypatch.setenv("ORBITFL_CACHE_DIR", str(tmp_path))
    fresh = build_federation(spec(), 2, 5, tracks(2))
    first = build_federation(spec(cache=True), 2, 5, tracks(2))
    assert list((tmp_path / "object-tiles").iterdir())
    again = build_federation(spec(cache=True), 2, 5, tracks(2))
    for x, y, z in zip([fresh.test, *fresh.clients], [first.test, *first.clients],
                       [again.test, *again.clients]):
        assert x.images.equal(y.images) and x.images.equal(z.images)


@pytest.mark.parametrize("changes, message", [
    ({"object_fraction": 0}, "data.object_fraction: .*greater than 0"),
    ({"object_fraction": 1}, "data.object_fraction: .*less than 1"),
    ({"object_fraction": -0.1}, "data.object_fraction: .*greater than 0"),
    ({"object_fraction": float("nan")}, "data.object_fraction: .*finite"),
    ({"object_fraction": 0.01}, "data: 'object_fraction' 0.01 of a 32 x 32 tile is 10 pixels"),
    ({"object_fraction": 0.05, "image_size": 16},
     "data: 'object_fraction' 0.05 of a 16 x 16 tile is 13 pixels"),
    ({"dataset": "synthetic", "object_fraction": 0.1},
     "data: 'object_fraction' applies to geo-synthetic-objects, not synthetic"),
    ({"validation_per_class": 0}, "data.validation_per_class: .*greater than 0"),
    ({"partition": "orbit"}, "data: geo-synthetic-objects splits .* set 'partition'"),
    ({"validation_per_class": 5, "validation_fraction": 0.1},
     "data: 'validation_per_class' and 'validation_fraction' are two validation sets"),
])
def test_bad_settings_are_one_line_naming_the_yaml_path(tmp_path, changes, message):
    document = yaml.safe_load((SCENARIOS / "imbalance-base.yaml").read_text())
    document["constellation"]["tle"] = str((SCENARIOS / document["constellation"]["tle"])
                                           .resolve())
    document["data"] = {"dataset": "geo-synthetic-objects", "partition": "dirichlet",
                        "imbalance_ratio": 100, **changes}
    if changes.get("dataset") == "synthetic":
        document["data"]["imbalance_ratio"] = 1
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError, match=message) as err:
        load_scenario(path)
    assert len(str(err.value).splitlines()) == 1
