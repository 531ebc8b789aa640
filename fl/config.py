"""The learning layer's configuration, declared once: the scenario schema composes these
dataclasses as its sections (``data`` is ``DataSpec``, ``fl.safe`` is ``SafeConfig``,
``fl.fedprox``, ``fl.fedbuff`` and ``fl.compression`` the classes of those names,
``execution`` is ``Execution``), so each option's type, bounds, description and unit live
here (``orbitfl/core/options.py``). Plain dataclasses, no torch: a scenario validates without
importing it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from orbitfl.core.cache_dir import default_cache_dir
from orbitfl.core.limits import (
    MAX_IMAGE_BYTES,
    MAX_SATELLITES,
    MAX_TRACK_IMAGES,
    image_bytes,
)
from orbitfl.core.options import SCENARIO_FOLDER, STRICT, Duration, option

from . import registry

BUILT_IN_DATASETS = tuple(registry.BUILT_INS["dataset"])


@dataclass(frozen=True)
class SafeConfig:
    """SAFE's switches and their modes (docs/safe-method.md); every orbitfl choice is a field.
    The scenario's ``fl.safe`` section is this class (``orbitfl/core/options.py``)."""

    __pydantic_config__ = STRICT

    cro: bool = option(
        True, "CRO: class rectification, server-sent class weights in the local loss")
    fau: bool = option(
        True, "FAU: feature-aligned EMA start from the global model, mu from CKA on the SES")
    dmr: bool = option(
        True, "DMR: cosine schedule from global to local over the rounds (scales FAU's mu and "
              "CRO)")
    ace: bool = option(
        True, "ACE: adaptive context enhancement module between backbone and head")
    cro_mode: Literal["grad_norm", "ratio_loss"] = option(
        "grad_norm", "how CRO weighs classes: grad_norm or ratio_loss")
    cro_smoothing: bool = option(True, "smooth CRO's weights over rounds (0.9 old + 0.1 new)")
    fau_scope: Literal["all", "backbone"] = option(
        "all", "parameters FAU's EMA start blends: all, or the backbone only")
    fau_payload: Literal["features", "gram"] = option(
        "features", "FAU's payload: features (n x d) or their Gram matrix (n x n)")
    fau_cka: bool = option(True, "FAU's mu driven by CKA; false: fixed mu")
    # absolute keeps the divergence's size (a client always far from the global model keeps
    # more of its own than one always close); relative divides it by the client's running
    # mean, the earlier reading, which gives both mu ~ tau (docs/safe-method.md, FAU)
    fau_divergence: Literal["absolute", "relative"] = option(
        "absolute", "FAU's CKA divergence as it is (absolute) or over the client's running "
                    "mean (relative)")
    fau_divergence_ref: float = option(
        0.1, "absolute FAU: the CKA divergence at which a client keeps fau_tau of its model",
        gt=0, le=1)
    # fau_tau = fau_mu_fixed by default, so fixed against CKA-driven mu is a fair comparison
    fau_tau: float = option(0.5, "mu of a client drifting as much as usual", gt=0)
    # a bound of 1 would let a client ignore the global model entirely (orbitfl's choice)
    fau_mu_max: float = option(0.8, "upper bound on FAU's mu", ge=0, lt=1)
    fau_mu_fixed: float = option(0.5, "FAU's mu when fau_cka is false", ge=0, le=1)
    dmr_cro: Literal["ramp_up", "constant", "ramp_down"] = option(
        "ramp_up", "DMR's schedule of CRO: ramp_up, constant or ramp_down")
    ace_mode: Literal["gate", "residual"] = option(
        "gate", "how ACE's mask acts: gate (background scaled down, foreground up) or residual "
                "(F + gamma M F)")
    ace_client_contexts: bool = option(
        True, "ACE: each client keeps its own context embeddings; the server broadcasts them "
              "all as a clients x K x d matrix (false: one shared, averaged E)")
    ace_contexts: int = option(8, "K, the number of ACE context embeddings", gt=0, le=1024)
    ace_dim: int = option(128, "d, ACE's attention width", gt=0, le=4096)
    # the mask prior and the query residual are orbitfl's additions (see models.ACE)
    ace_prior: float = option(0.3, "foreground budget of ACE's mask prior", gt=0, lt=1)
    ace_prior_weight: float = option(0.3, "weight of ACE's mask prior; 0 disables it", ge=0)
    ace_query_residual: bool = option(True, "ACE's mask head reads context plus query")


@dataclass(frozen=True)
class TrainConfig:
    """One client job's local SGD. A scenario writes these options flat in its ``fl``
    section (``epochs`` as ``local_epochs``), whose fields take their declarations from
    here; momentum 0.9 and weight decay 5e-4 are the SAFE protocol's (docs/safe-method.md),
    not scenario options."""

    __pydantic_config__ = STRICT

    epochs: int = option(1, "local training epochs per job", gt=0, le=1000)
    batch_size: int = option(32, "local training batch size [images]", gt=1, le=65_536)
    lr: float = option(0.01, "local SGD learning rate", gt=0, le=10)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = option(False, "random flips and quarter turns during local training")


@dataclass(frozen=True)
class FedProxConfig:
    __pydantic_config__ = STRICT

    mu: float = option(0.01, "weight of FedProx's proximal term", ge=0)


@dataclass(frozen=True)
class FedBuffConfig:
    __pydantic_config__ = STRICT

    buffer_size: int = option(
        5, "updates buffered before the server aggregates", gt=0, le=MAX_SATELLITES)
    staleness_exponent: float = option(
        0.5, "exponent a of the staleness weight (1 + staleness) ** -a", ge=0)
    server_lr: float = option(
        1.0, "server learning rate applied to the buffered mean update", gt=0)


@dataclass(frozen=True)
class CompressionConfig:
    """Codecs by link direction, named like the byte columns (up = ground to satellites):
    ``to_satellites`` for the global model the server broadcasts, ``to_ground`` for the
    updates satellites send back (where top-k with error feedback applies)."""

    __pydantic_config__ = STRICT

    to_satellites: Literal["fp32", "fp16", "int8", "int8-channel"] = option(
        "fp32", "codec of the global model sent up (ground to satellites)")
    to_ground: Literal["fp32", "fp16", "int8", "int8-channel", "topk"] = option(
        "fp32", "codec of the updates sent down (satellites to ground); topk keeps the largest, "
                "with error feedback")
    topk_ratio: float = option(0.01, "fraction of update entries topk keeps", gt=0, le=1)


@dataclass(frozen=True)
class AcquisitionSpec:
    """When and how often a satellite images its ground track (the geo datasets)."""

    __pydantic_config__ = STRICT

    window: Duration = option(
        21600.0, "span after the epoch over which satellites image their track [s]")
    interval_s: float = option(120.0, "time between two images of one satellite [s]", gt=0)
    min_sun_elevation_deg: float = option(
        10.0, "image only when the Sun is at least this high at the target [deg]", ge=-10, lt=90)
    clouds: bool = option(True, "draw clouds from a climatological cloud model (geo-synthetic; "
                                "geo-synthetic-objects draws cloud cells as a class instead)")

    def __post_init__(self) -> None:
        images = self.window / self.interval_s
        if images > MAX_TRACK_IMAGES:
            raise ValueError(f"window / interval_s is {images:.3g} images per satellite; at "
                             f"most {MAX_TRACK_IMAGES}")


GENERATED = ("geo-synthetic", "geo-synthetic-objects", "synthetic")  # no folder on disk
GEO_DATASETS = ("geo-synthetic", "geo-synthetic-objects")  # ground tracks over MODIS land cover
DEFAULT_OBJECT_FRACTION = 0.05


@dataclass(frozen=True)
class DataSpec:
    """Where every client's images come from, how they are split, the test set and SAFE's
    shared set. The scenario's ``data`` section is this class; a combination the chosen
    dataset would ignore or cannot serve is refused here, wherever the spec is made."""

    __pydantic_config__ = STRICT

    dataset: str = option(
        "geo-synthetic", "where images come from: a built-in ("
                         f"{', '.join(registry.BUILT_INS['dataset'])}; the real datasets "
                         "and folder read data.path) or an installed plugin's name ('orbitfl "
                         "list datasets')")
    task: Literal["classification", "segmentation"] = option(
        "classification", "classification, or segmentation (per-pixel maps; geo-synthetic, "
                          "geo-synthetic-objects or loveda)")
    path: Annotated[Path | None, SCENARIO_FOLDER] = option(
        None, "folder of a real dataset, relative to the scenario file")
    classes: int = option(10, "number of classes (synthetic only)", ge=2, le=100)
    image_size: Literal[16, 32, 64] = option(32, "image side [pixels]")
    samples_per_class_max: int = option(
        500, "training images of the largest class (synthetic, geo-synthetic-objects); a cap "
             "per class (real)",
        gt=0, le=100_000)
    imbalance_ratio: float = option(
        1.0, "long-tail imbalance factor of the training pool: largest / smallest class", ge=1)
    partition: Literal["orbit", "dirichlet", "iid", "pathological"] = option(
        "orbit", "how training images are split among satellites")
    dirichlet_alpha: float = option(
        0.5, "concentration of the dirichlet partition (smaller: more skewed)", gt=0)
    min_per_client: int = option(
        10, "dirichlet partition: redraw until every satellite holds this many images",
        ge=1, le=100_000)
    classes_per_client: int = option(
        2, "pathological partition: classes each satellite holds", ge=1, le=100)
    ses_per_class: int = option(
        10, "images per class in SAFE's shared server set (SES)", ge=1, le=1000)
    validation_fraction: float = option(
        0.0, "share of each client's training images held out as its validation set (for "
             "tuning; never the test set)", ge=0, lt=1)
    # None (unset) leaves both out of the scenario's content hash (scenario.ADDED_LATER)
    validation_per_class: int | None = option(
        None, "images per class in a balanced validation set (for tuning) drawn apart from "
              "the test set, the SES and every client; instead of validation_fraction",
        gt=0, le=10_000)
    object_fraction: float | None = option(
        None, "share of each tile its object covers (geo-synthetic-objects; unset: "
              "0.05)", gt=0, lt=1)
    test_per_class: int = option(
        100, "images per class in the balanced test set", gt=0, le=10_000)
    acquisition: AcquisitionSpec = option(
        AcquisitionSpec(), "when and how often satellites image their ground track "
                           "(geo-synthetic, geo-synthetic-objects)")
    cache: bool = option(True, "reuse generated data (in the user cache folder)")
    factory: str | None = option(
        None, "your own images instead of dataset: 'package.module:load', a function "
              "load(image_size, seed, **options) returning a LoadedImages pool that orbitfl "
              "splits like a folder dataset (docs/extending.md)")
    options: dict[str, Any] | None = option(
        None, "keyword arguments of the dataset's factory")

    @property
    def source(self) -> str:
        """The dataset's name, or the factory's reference."""
        return self.factory if self.factory is not None else self.dataset

    @property
    def pooled(self) -> bool:
        """Images from a folder, a factory or a plugin: a pool orbitfl splits itself."""
        return self.source not in (*GENERATED, "loveda")

    # -- what the data builders read ------------------------------------------------------
    @property
    def object_share(self) -> float:
        """The objects' share of a tile (``object_fraction``, or its default)."""
        return DEFAULT_OBJECT_FRACTION if self.object_fraction is None else self.object_fraction

    @property
    def min_sun_elevation_deg(self) -> float:
        return self.acquisition.min_sun_elevation_deg

    @property
    def clouds(self) -> bool:
        return self.acquisition.clouds

    @property
    def cache_dir(self) -> Path | None:
        """The tile cache (``$ORBITFL_CACHE_DIR`` or the user cache folder), or None."""
        return default_cache_dir() if self.cache else None

    def __post_init__(self) -> None:
        self._known_source()
        if self.factory is not None or self.dataset not in BUILT_IN_DATASETS:
            self._plugin_options_only()
            return
        real = self.dataset not in GENERATED
        if real and self.path is None:
            raise ValueError(f"the {self.dataset} dataset needs 'path' (its folder on disk)")
        if not real and self.path is not None:
            raise ValueError(f"'path' applies to real datasets, not {self.dataset}")
        if self.partition == "orbit" and self.dataset == "geo-synthetic-objects":
            raise ValueError("geo-synthetic-objects splits its long-tailed pool of objects "
                             "by dirichlet, iid or pathological: set 'partition'")
        if self.partition == "orbit" and self.dataset != "geo-synthetic":
            raise ValueError("the orbit partition needs the geo-synthetic dataset")
        segmentation_data = self.dataset in ("geo-synthetic", "geo-synthetic-objects",
                                             "loveda")
        if self.task == "segmentation" and not segmentation_data:
            raise ValueError("segmentation needs the geo-synthetic, geo-synthetic-objects or "
                             "loveda dataset")
        if self.dataset == "loveda" and self.task != "segmentation":
            raise ValueError("loveda is a segmentation dataset: set task: segmentation")
        if (self.task == "segmentation" and self.dataset != "geo-synthetic-objects"
                and self.partition not in ("orbit", "iid")):
            raise ValueError("segmentation data splits by orbit or iid")
        self._no_ignored_options()
        self._objects_fit()
        self._one_validation_set()
        self._fits_in_memory()

    def _known_source(self) -> None:
        if ":" in self.dataset:
            raise ValueError("dataset takes a name; a function of your own goes in 'factory'")
        registry.entry("dataset", self.dataset)
        if self.factory is not None:
            registry.reference("dataset", self.factory)
            if self.dataset != DataSpec.dataset:
                raise ValueError("give dataset or factory, not both")
        elif self.options is not None and self.dataset in BUILT_IN_DATASETS:
            raise ValueError("options apply to a dataset from a factory or a plugin")

    def _plugin_options_only(self) -> None:
        """A factory's or plugin's images are a pool split like a folder dataset's."""
        if self.partition == "orbit":
            raise ValueError(f"{self.source}: the orbit partition needs the geo-synthetic "
                             "dataset; set partition (dirichlet, iid or pathological)")
        if self.task != "classification":
            raise ValueError(f"{self.source}: datasets of your own are classification data")
        if self.path is not None or self.classes != DataSpec.classes:
            raise ValueError(f"{self.source}: 'path' and 'classes' apply to built-in "
                             "datasets; pass your own through 'options'")

    def _no_ignored_options(self) -> None:
        """An option the chosen dataset would ignore is an error, not a silent no-op: a
        study that sets an imbalance factor must get one."""
        if self.classes != DataSpec.classes and self.dataset != "synthetic":
            raise ValueError(f"'classes' applies to the synthetic dataset; {self.dataset} "
                             "has its own classes")
        if self.imbalance_ratio != 1 and (self.dataset in ("geo-synthetic", "loveda")
                                          or self.partition == "orbit"):
            raise ValueError(f"'imbalance_ratio' applies to synthetic and folder datasets; "
                             f"{self.dataset} takes the class mix its imagery has (the run "
                             "reports its true imbalance factor)")

    def _objects_fit(self) -> None:
        from .geo.objects import MIN_OBJECT_PIXELS, object_pixels

        if self.object_fraction is not None and self.dataset != "geo-synthetic-objects":
            raise ValueError(f"'object_fraction' applies to geo-synthetic-objects, not "
                             f"{self.dataset}")
        pixels = object_pixels(self.object_share, self.image_size)
        if self.dataset == "geo-synthetic-objects" and not (
                MIN_OBJECT_PIXELS <= pixels < self.image_size ** 2):
            raise ValueError(f"'object_fraction' {self.object_share:g} of a {self.image_size} x "
                             f"{self.image_size} tile is {pixels} pixels; an object needs at "
                             f"least {MIN_OBJECT_PIXELS} and a background pixel: change "
                             "object_fraction or image_size")

    def _one_validation_set(self) -> None:
        """One validation set decides tuning: the balanced one or the per-client hold-out."""
        if self.validation_per_class is None:
            return
        if self.validation_fraction > 0:
            raise ValueError("'validation_per_class' and 'validation_fraction' are two "
                             "validation sets; set one of them")
        per_image = self.task == "classification" or self.dataset == "geo-synthetic-objects"
        if not per_image:
            raise ValueError(f"'validation_per_class' needs a class per image; {self.dataset} "
                             "segmentation tiles hold many: use validation_fraction")

    def _fits_in_memory(self) -> None:
        """The generated images (training pool for synthetic, test set and SES) as float32
        tensors must fit ``MAX_IMAGE_BYTES``; real datasets are as big as the user's disk."""
        from .geo.landcover import SCENE_CLASSES
        from .geo.objects import OBJECT_CLASSES

        if self.dataset == "synthetic":
            classes, per_class = self.classes, self.samples_per_class_max
        elif self.dataset == "geo-synthetic-objects":
            classes, per_class = len(OBJECT_CLASSES), self.samples_per_class_max
        elif self.dataset == "geo-synthetic":
            classes, per_class = len(SCENE_CLASSES), 0
        else:
            return
        images = classes * (per_class + self.test_per_class + self.ses_per_class
                            + (self.validation_per_class or 0))
        size = image_bytes(images, self.image_size)
        if size > MAX_IMAGE_BYTES:
            raise ValueError(f"the generated images take {size / 2**30:.1f} GiB ({images} of "
                             f"3 x {self.image_size} x {self.image_size} float32); at most "
                             f"{MAX_IMAGE_BYTES / 2**30:g} GiB: lower samples_per_class_max, "
                             "test_per_class, ses_per_class or image_size")


Backend = Literal["serial", "local", "ray"]
Device = Literal["auto", "cpu", "cuda"]
BACKENDS, DEVICES = get_args(Backend), get_args(Device)


@dataclass(frozen=True)
class Execution:
    """Where clients' local training runs (the scenario's ``execution`` section); results
    are identical for every backend and worker count (on CPU, ``fl/executors.py``);
    ``threads``, ``device`` and ``batched`` change them within floating-point tolerance."""

    __pydantic_config__ = STRICT

    backend: Backend = option(
        "serial", "serial: in this process; local: a process pool; ray: Ray actors")
    workers: int | None = option(
        None, "processes or actors (local, ray); default: cores / threads", ge=1, le=4096)
    threads: int = option(
        1, "torch threads per client fit, the same in every backend (results depend on it "
           "bit-wise)", ge=1, le=256)
    device: Device = option(
        "auto", "training device: auto picks CUDA when torch sees one")
    batched: bool = option(
        False, "train the clients waiting at once together (torch.func.vmap; FedAvg, FedProx, "
               "FedBuff, FedLA; classifiers with BatchNorm): many small clients gain most; "
               "within 1e-4 of one-by-one training, not bit-identical")
    address: str | None = option(
        None, "ray: address of an existing cluster ('auto', 'ray://host:10001'); default: "
              "start Ray on this machine")

    def __post_init__(self) -> None:
        # the scenario checks these already; an Execution made in Python is checked here
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; known: {', '.join(DEVICES)}")

    def worker_count(self) -> int:
        """Processes or actors a pool starts: ``workers``, or the cores over ``threads``."""
        if self.workers is not None:
            return max(1, int(self.workers))
        return max(1, (os.cpu_count() or 1) // max(1, self.threads))
