"""Building the federated data of a scenario: every client's training set, the server's
Self-Examination Sample (SES, K images per class) and a balanced test set.

Sources: ``geo-synthetic`` (tiles each satellite images along its own ground track; the
``orbit`` partition keeps them where they were taken), ``geo-synthetic-objects`` (drawn
objects on backgrounds from those tracks), ``synthetic`` (seeded textures) and the real
folder datasets. Test and SES images never enter a client's pool: for generated
data they come from separate seeded streams, for real data they are carved out before the
long tail and the partition are applied. One seed drives every choice.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from orbitfl.core.cache_dir import entry_path, read_entry, write_entry
from orbitfl.core.errors import InputError, short
from orbitfl.core.random_streams import RandomStreams

from .config import BUILT_IN_DATASETS, DataSpec
from .datasets import (
    FederatedData,
    ImageSet,
    TextureClasses,
    labels_for_counts,
    require_image_memory,
)
from .folders import LoadedImages, load_class_folders, load_loveda
from .geo.acquisition import Acquisition, GroundTrack, acquire
from .geo.landcover import CLOUD, SCENE_CLASSES
from .geo.object_tiles import cached_object_tiles
from .geo.objects import OBJECT_CLASSES
from .geo.segmentation import class_rich_positions, label_maps
from .geo.tiles import normalise, render, render_maps
from .lazy_data import LazyImageSet
from .partition import dirichlet_partition, iid_partition, long_tail_counts, pathological_partition

RENDER_VERSION = 2  # bump when tile rendering changes its output


def build_federation(spec: DataSpec, clients: int, seed: int,
                     tracks: Sequence[GroundTrack] | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     lazy: bool = True) -> FederatedData:
    """Every client's training set, the test set and the SES. ``progress(done, total)``
    follows the rendering of orbit-driven image sets (the slow part), one set at a time.
    With ``lazy`` (the default) geo-synthetic classification clients are ``LazyImageSet``s
    whose tiles are rendered on first use; ``lazy=False`` renders them all now."""
    steps = _Steps(progress, clients + 2)  # every client's set, the test set, the SES
    rng = RandomStreams(seed).data()
    if spec.factory is not None or spec.dataset not in BUILT_IN_DATASETS:
        data = _pool(spec, clients, rng, _from_factory(spec, seed), str(spec.source))
    elif spec.dataset == "geo-synthetic-objects":
        data = _geo_objects(spec, clients, seed, tracks, rng, steps)
    elif spec.task == "segmentation":
        if spec.dataset == "loveda":
            data = _loveda(spec, clients, rng)
        else:
            data = _geo_segmentation(spec, clients, seed, tracks, rng, steps)
    elif spec.dataset == "geo-synthetic":
        data = _geo(spec, clients, seed, tracks, rng, steps, lazy)
    elif spec.dataset == "synthetic":
        data = _textures(spec, clients, seed, rng)
    else:
        assert spec.path is not None  # DataSpec requires one for every real dataset
        data = _pool(spec, clients, rng,
                     load_class_folders(spec.dataset, Path(spec.path), spec.image_size),
                     str(spec.path))
    steps.finish()
    _require_training_data(data, spec)
    if spec.validation_fraction > 0:
        data = hold_out_validation(data, spec.validation_fraction, rng["validation"])
    return data


def hold_out_validation(data: FederatedData, fraction: float,
                        rng: np.random.Generator) -> FederatedData:
    """Each client keeps ``floor(fraction * n)`` of its own images (chosen at random, at
    least one left to train on) out of training; together they form the validation set.
    Held out per client, the validation set has the federation's own long tail and class
    mix, as a real federation's would, and the test set is never touched."""
    kept, held = [], []
    for client in data.clients:
        order = rng.permutation(len(client))
        n_val = min(int(np.floor(fraction * len(client))), len(client) - 1)
        held.append(client.subset(order[:n_val]))
        kept.append(client.subset(np.sort(order[n_val:])))
    validation = ImageSet(torch.cat([h.images for h in held]),
                          torch.cat([h.labels for h in held]))
    return replace(data, clients=kept, validation=validation)


class _Steps:
    """Counts finished steps for an optional ``progress(done, total)`` callback."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def finish(self) -> None:
        """All done (datasets loaded in one piece report once, at the end)."""
        if self.progress is not None and self.done < self.total:
            self.progress(self.total, self.total)


def _require_training_data(data: FederatedData, spec: DataSpec) -> None:
    """A client without a single training image cannot train (and a round of only such
    clients would average zero samples): that is the scenario's data being too small."""
    empty = [i for i, c in enumerate(data.clients) if len(c) == 0]
    if not empty:
        return
    pool = sum(len(c) for c in data.clients)
    if spec.partition == "orbit":
        cause = ("its ground track has no sunlit image above "
                 "data.acquisition.min_sun_elevation_deg in data.acquisition.window")
    else:
        cause = (f"the {spec.partition} partition of {pool} training images leaves it none; "
                 "give more images per class or use fewer clients")
    raise InputError(f"data: {len(empty)} of {len(data.clients)} clients get no training "
                     f"image (first: client {empty[0]}): {cause}")


def _require_memory_for(shots: Sequence[Acquisition], spec: DataSpec) -> None:
    """The schema bounds the images of one satellite; the fleet's total is known only
    here, before any tile is rendered."""
    require_image_memory(sum(len(s.labels) for s in shots), spec.image_size,
                         "data.acquisition", f"{len(shots)} satellites take them; raise "
                         "interval_s, shorten window or select fewer satellites",
                         masks=spec.task == "segmentation")


def _geo(spec, clients, seed, tracks, rng, steps, lazy) -> FederatedData:
    if tracks is None or len(tracks) != clients:
        raise ValueError("geo-synthetic needs one ground track per client")
    classes = list(range(len(SCENE_CLASSES))) if spec.clouds else \
        [c for c in range(len(SCENE_CLASSES)) if c != CLOUD]
    names = tuple(SCENE_CLASSES[c] for c in classes)
    remap = np.full(len(SCENE_CLASSES), -1)
    remap[classes] = np.arange(len(classes))
    shots = [acquire(t, spec.min_sun_elevation_deg, rng["clouds"], spec.clouds) for t in tracks]
    _require_memory_for(shots, spec)

    def tiles(labels, sun, stream):
        images = cached_render(labels, sun, spec.image_size, (seed, *stream), spec.cache_dir)
        steps()
        return ImageSet(torch.as_tensor(normalise(images)),
                        torch.as_tensor(remap[labels], dtype=torch.long))

    def client(labels, sun, i):
        # rendered when a job first trains on it (peak memory follows the clients training
        # at once, not the fleet); the same tiles as rendering now, whatever the order
        steps()
        tiles = lazy_tiles(labels, sun, spec.image_size, (seed, "client", i), spec.cache_dir,
                           remap)
        return tiles if lazy else tiles.materialise()

    if spec.partition == "orbit":
        sets = [client(s.labels, s.sun_elevation_deg, i) for i, s in enumerate(shots)]
    else:
        labels = np.concatenate([s.labels for s in shots])
        sun = np.concatenate([s.sun_elevation_deg for s in shots])
        parts = _partition(spec, remap[labels], clients, rng["partition"])
        sets = [client(labels[p], sun[p], i) for i, p in enumerate(parts)]

    def balanced(per_class, generator, stream):
        labels = labels_for_counts(np.full(len(SCENE_CLASSES), per_class) *
                                   (remap >= 0), generator)
        return tiles(labels, generator.uniform(15.0, 75.0, len(labels)), stream)

    validation = None if spec.validation_per_class is None else balanced(
        spec.validation_per_class, rng["validation"], ("validation",))
    return FederatedData(sets, balanced(spec.test_per_class, rng["test"], ("test",)),
                         len(classes), ses=balanced(spec.ses_per_class, rng["ses"], ("ses",)),
                         class_names=names, validation=validation)


def _geo_objects(spec, clients, seed, tracks, rng, steps) -> FederatedData:
    """Synthetic object tiles: a long-tailed pool of object classes split over clients by
    ``spec.partition``, each client's objects drawn on backgrounds from its own sunlit
    ground track; test set, SES and balanced validation set on backgrounds from places drawn
    uniformly over the sphere, each from its own seeded stream. Classification labels are
    the object's class; segmentation masks are 0 (background) or class + 1."""
    if tracks is None or len(tracks) != clients:
        raise ValueError("geo-synthetic-objects needs one ground track per client")
    segmentation = spec.task == "segmentation"
    counts = long_tail_counts(spec.samples_per_class_max, len(OBJECT_CLASSES),
                              spec.imbalance_ratio, rng["train"])
    labels = labels_for_counts(counts, rng["train"])
    parts = _partition(spec, labels, clients, rng["partition"])
    shots = [acquire(t, spec.min_sun_elevation_deg, rng["clouds"], clouds=False)
             for t in tracks]

    def tiles(classes, lat, lon, sun, stream):
        images, masks = cached_object_tiles(classes, lat, lon, sun, spec.image_size,
                                            spec.object_share, (seed, *stream), spec.cache_dir)
        steps()
        target = masks if segmentation else classes
        return ImageSet(torch.as_tensor(normalise(images)),
                        torch.as_tensor(target, dtype=torch.long),
                        foreground=torch.as_tensor(masks > 0))

    def client(i, part):
        shot = shots[i]
        if len(part) and not len(shot.labels):
            raise InputError(f"data: client {i}'s ground track has no sunlit image above "
                             "data.acquisition.min_sun_elevation_deg in "
                             "data.acquisition.window to draw its objects on")
        # every background of the track once before any repeats
        where = np.resize(rng["train"].permutation(len(shot.labels)), len(part))
        return tiles(labels[part], shot.lat_deg[where], shot.lon_deg[where],
                     shot.sun_elevation_deg[where], ("objects", "client", i))

    def balanced(per_class, generator, stream):
        classes = labels_for_counts(np.full(len(OBJECT_CLASSES), per_class), generator)
        lat = np.degrees(np.arcsin(generator.uniform(-1.0, 1.0, len(classes))))
        lon = generator.uniform(-180.0, 180.0, len(classes))
        return tiles(classes, lat, lon, generator.uniform(15.0, 75.0, len(classes)),
                     ("objects", *stream))

    sets = [client(i, p) for i, p in enumerate(parts)]
    validation = None if spec.validation_per_class is None else balanced(
        spec.validation_per_class, rng["validation"], ("validation",))
    names = ("background", *OBJECT_CLASSES) if segmentation else OBJECT_CLASSES
    return FederatedData(sets, balanced(spec.test_per_class, rng["test"], ("test",)),
                         len(names), ses=balanced(spec.ses_per_class, rng["ses"], ("ses",)),
                         class_names=names, validation=validation)


def _geo_segmentation(spec, clients, seed, tracks, rng, steps) -> FederatedData:
    """Per-pixel land cover and clouds under each satellite's sunlit track (orbit split) or
    pooled and split at random (iid); test set and SES from class-rich places."""
    if tracks is None or len(tracks) != clients:
        raise ValueError("geo-synthetic needs one ground track per client")
    shots = [acquire(t, spec.min_sun_elevation_deg, rng["clouds"], clouds=False)
             for t in tracks]
    _require_memory_for(shots, spec)

    def tiles(lat, lon, sun, generator):
        maps = label_maps(lat, lon, spec.image_size, generator, spec.clouds)
        images = render_maps(maps, sun, generator)
        steps()
        return ImageSet(torch.as_tensor(normalise(images)), torch.as_tensor(maps))

    if spec.partition == "orbit":
        sets = [tiles(s.lat_deg, s.lon_deg, s.sun_elevation_deg, rng["train"]) for s in shots]
    else:
        lat, lon, sun = (np.concatenate([getattr(s, f) for s in shots])
                         for f in ("lat_deg", "lon_deg", "sun_elevation_deg"))
        parts = iid_partition(len(lat), clients, rng["partition"])
        sets = [tiles(lat[p], lon[p], sun[p], rng["train"]) for p in parts]

    def rich(per_class, generator):
        lat, lon = class_rich_positions(per_class, generator, clouds=spec.clouds)
        return tiles(lat, lon, generator.uniform(15.0, 75.0, len(lat)), generator)

    return FederatedData(sets, rich(max(1, spec.test_per_class // 10), rng["test"]),
                         len(SCENE_CLASSES), ses=rich(spec.ses_per_class, rng["ses"]),
                         class_names=SCENE_CLASSES)


def _loveda(spec, clients, rng) -> FederatedData:
    """LoveDA tiles: a random share is the test set, K per class (richest tiles) the SES, and
    the rest is split over clients (iid)."""
    loaded = load_loveda(Path(spec.path), spec.image_size)
    masks = loaded.labels
    order = rng["test"].permutation(len(masks))
    n_test = max(1, len(masks) // 5)
    test_idx, rest = order[:n_test], order[n_test:]
    ses_idx: list[int] = []
    for c in range(len(loaded.class_names)):
        share = (masks[rest] == c).mean(axis=(1, 2))
        ses_idx += [int(rest[i]) for i in np.argsort(-share)[:spec.ses_per_class]
                    if int(rest[i]) not in ses_idx]
    pool = np.array([i for i in rest if i not in set(ses_idx)])
    if len(pool) < clients:
        raise InputError(f"{spec.path}: LoveDA folder has too few tiles for {clients} clients "
                         f"({len(masks)} tiles, {n_test} for the test set, {len(ses_idx)} for "
                         "the SES)")
    everything = ImageSet(torch.as_tensor(normalise(loaded.images)), torch.as_tensor(masks))
    parts = iid_partition(len(pool), clients, rng["partition"])
    return FederatedData([everything.subset(pool[p]) for p in parts],
                         everything.subset(test_idx), len(loaded.class_names),
                         ses=everything.subset(np.array(ses_idx)),
                         class_names=loaded.class_names)


def _textures(spec, clients, seed, rng) -> FederatedData:
    texture = TextureClasses(spec.classes, spec.image_size,
                             np.random.default_rng(np.random.SeedSequence([seed, 0])))
    counts = long_tail_counts(spec.samples_per_class_max, spec.classes, spec.imbalance_ratio,
                              rng["train"])
    train = texture.render(labels_for_counts(counts, rng["train"]), rng["train"])
    test = texture.render(labels_for_counts(np.full(spec.classes, spec.test_per_class),
                                            rng["test"]), rng["test"])
    ses = texture.render(labels_for_counts(np.full(spec.classes, spec.ses_per_class),
                                           rng["ses"]), rng["ses"])
    validation = None if spec.validation_per_class is None else texture.render(
        labels_for_counts(np.full(spec.classes, spec.validation_per_class),
                          rng["validation"]), rng["validation"])
    parts = _partition(spec, train.labels.numpy(), clients, rng["partition"])
    return FederatedData([train.subset(p) for p in parts], test, spec.classes, ses=ses,
                         class_names=tuple(f"class_{c}" for c in range(spec.classes)),
                         validation=validation)


def _from_factory(spec: DataSpec, seed: int) -> LoadedImages:
    """The pool a dataset factory (``data.factory`` or an installed plugin) returns, checked
    for the shapes and values a folder dataset's pool has."""
    from .extensions import factory
    from .registry import PluginError, entry, reference

    options = dict(spec.options or {})
    try:
        item = reference("dataset", spec.factory) if spec.factory is not None \
            else entry("dataset", spec.dataset)
        load = factory(item, image_size=spec.image_size, seed=seed, **options)
    except PluginError as err:
        raise InputError(f"data: {err}") from None
    pool = load(image_size=spec.image_size, seed=seed, **options)
    size = spec.image_size
    where = f"data: {item.name}"
    if not isinstance(pool, LoadedImages):
        raise InputError(f"{where} returned a {type(pool).__name__}, not an "
                         "orbitfl.fl.folders.LoadedImages")
    images, labels = np.asarray(pool.images), np.asarray(pool.labels)
    if images.ndim != 4 or images.shape[1:] != (3, size, size):
        raise InputError(f"{where}: images of shape {images.shape}; expected (n, 3, {size}, "
                         f"{size}) (data.image_size {size})")
    classes = len(pool.class_names)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or \
            labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
        raise InputError(f"{where}: labels must be one integer in [0, {classes}) per image "
                         f"({len(pool.class_names)} class_names)")
    return LoadedImages(images.astype(np.float32), labels.astype(np.int64),
                        tuple(pool.class_names))


def _pool(spec, clients, rng, loaded: LoadedImages, where: str) -> FederatedData:
    """A pool of labelled images (a folder's, a factory's) carved into test set, SES and a
    long-tailed training pool, then partitioned."""
    labels = loaded.labels
    n_classes = len(loaded.class_names)
    order = rng["test"].permutation(len(labels))
    test_idx, ses_idx, val_idx, pool = [], [], [], []
    per_val = spec.validation_per_class or 0
    for c in range(n_classes):
        mine = order[labels[order] == c]
        need = spec.test_per_class + spec.ses_per_class + per_val
        if len(mine) <= need:
            held = " + data.validation_per_class" if per_val else ""
            raise InputError(f"{where}: class {short(loaded.class_names[c])} has "
                             f"{len(mine)} images; data.test_per_class + data.ses_per_class"
                             f"{held} need {need} and training at least one more")
        test_idx.append(mine[:spec.test_per_class])
        ses_idx.append(mine[spec.test_per_class:need - per_val])
        val_idx.append(mine[need - per_val:need])
        pool.append(mine[need:])
    counts = long_tail_counts(min(spec.samples_per_class_max, min(len(p) for p in pool)),
                              n_classes, spec.imbalance_ratio, rng["train"])
    train_idx = np.concatenate([p[:n] for p, n in zip(pool, counts)])
    images = torch.as_tensor(normalise(loaded.images))
    everything = ImageSet(images, torch.as_tensor(labels))
    train = everything.subset(train_idx)
    parts = _partition(spec, labels[train_idx], clients, rng["partition"])
    return FederatedData([train.subset(p) for p in parts],
                         everything.subset(np.concatenate(test_idx)), n_classes,
                         ses=everything.subset(np.concatenate(ses_idx)),
                         class_names=loaded.class_names,
                         validation=everything.subset(np.concatenate(val_idx)) if per_val
                         else None)


def _partition(spec: DataSpec, labels: np.ndarray, clients: int,
               rng: np.random.Generator) -> list[np.ndarray]:
    if spec.partition == "dirichlet":
        return dirichlet_partition(labels, clients, spec.dirichlet_alpha, rng,
                                   spec.min_per_client)
    if spec.partition == "pathological":
        return pathological_partition(labels, clients, spec.classes_per_client, rng)
    if spec.partition == "iid":
        return iid_partition(len(labels), clients, rng)
    raise ValueError(f"partition {spec.partition!r} does not apply to {spec.dataset}")


def cached_render(labels: np.ndarray, sun_elevation_deg: np.ndarray, size: int,
                  stream: tuple, cache_dir: Path | None) -> np.ndarray:
    """Rendered tiles, cached on disk by a hash of everything that decides them; an entry
    is used only when its checksum matches and it holds these tiles' shape and type
    (``orbitfl/core/cache_dir.py``), otherwise rendered again."""
    key = tile_key(labels, sun_elevation_deg, size, stream)
    path = None if cache_dir is None else entry_path(Path(cache_dir), "tiles", key.hexdigest())
    shape = (len(labels), 3, size, size)
    if path is not None:
        images = read_entry(path, lambda payload: _checked_tiles(payload, shape))
        if images is not None:
            return images
    seed = int.from_bytes(key.digest()[:8], "little")
    images = render(labels, sun_elevation_deg, size, np.random.default_rng(seed))
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, images, allow_pickle=False)
        write_entry(path, buffer.getvalue())
    return images


def _checked_tiles(payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The tiles in a cache entry's ``payload``, if they are ``shape`` finite float32s."""
    images = np.load(io.BytesIO(payload), allow_pickle=False)
    if images.shape != shape or images.dtype != np.float32 or not np.isfinite(images).all():
        raise ValueError(f"{images.dtype} tiles of shape {images.shape}, not float32 {shape}")
    return images


def tile_key(labels: np.ndarray, sun_elevation_deg: np.ndarray, size: int,
             stream: tuple) -> "hashlib._Hash":
    """The content hash of a set of tiles: everything that decides them (the render seed is
    drawn from it, so the same key always gives the same tiles)."""
    key = hashlib.sha256()
    key.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    key.update(np.ascontiguousarray(sun_elevation_deg, dtype=np.float64).tobytes())
    key.update(repr((size, stream, RENDER_VERSION)).encode())
    return key


@dataclass(frozen=True, eq=False)
class TileRecipe:
    """A client's tiles before rendering (a few arrays of labels and sun elevations):
    calling it renders them, or reads them back from the tile cache, normalised."""

    labels: np.ndarray
    sun_elevation_deg: np.ndarray
    size: int
    stream: tuple
    cache_dir: Path | None

    def __call__(self) -> torch.Tensor:
        return torch.as_tensor(normalise(cached_render(
            self.labels, self.sun_elevation_deg, self.size, self.stream, self.cache_dir)))


def lazy_tiles(labels: np.ndarray, sun_elevation_deg: np.ndarray, size: int, stream: tuple,
               cache_dir: Path | None, remap: np.ndarray) -> LazyImageSet:
    """A client's training set whose tiles are rendered when a job first uses them."""
    recipe = TileRecipe(labels, sun_elevation_deg, size, stream, cache_dir)
    return LazyImageSet(torch.as_tensor(remap[labels], dtype=torch.long), recipe,
                        tile_key(labels, sun_elevation_deg, size, stream).hexdigest())
