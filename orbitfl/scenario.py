"""The scenario file: a typed, frozen schema and a loader whose errors are one line.

Every error names the file, the YAML path (``fl.schedule.deadline``) and the problem.
Paths inside a scenario resolve relative to the scenario file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orbitfl.errors import InputError, read_user_file, short
from orbitfl.limits import (
    ECHO_CHARS,
    MAX_DURATION_S,
    MAX_IMAGE_BYTES,
    MAX_ROUNDS,
    MAX_SATELLITES,
    MAX_SCENARIO_BYTES,
    MAX_TRACK_IMAGES,
    image_bytes,
)
from orbitfl.scenario_yaml import load_yaml

_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(sec|s|min|m|h|d)\s*")  # longest unit first


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string like '90s', '10min', '6h', '3d', '1h30min';
    finite, positive and at most a year (``MAX_DURATION_S``)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '6h' or '90s'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 100:
        parts = _DURATION_RE.findall(value)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", value):
            raise ValueError(f"expected a duration like '6h', '10min' or '90s', "
                             f"got {short(value)}")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration like '6h' or '90s', got {short(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {short(value)}")
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {short(value)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most {format_duration(MAX_DURATION_S)} "
                         f"({MAX_DURATION_S:.0f} s), got {short(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """'3d', '6h', '90min' or '45s': the largest unit that divides ``seconds`` evenly."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    """Every section: unknown keys are errors, and no float anywhere may be inf or nan
    (they pass ``gt``/``le`` bounds and then crash or hang a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Selection(_Strict):
    name: str | list[str] | None = Field(None, description="shell-style name pattern(s)")
    norad_ids: list[int] | None = None
    limit: int | None = Field(None, gt=0)


class WalkerConfig(_Strict):
    """A designed shell: a named preset, or every parameter (a preset's may be overridden)."""

    preset: str | None = None
    planes: int | None = Field(None, gt=0, le=MAX_SATELLITES)
    per_plane: int | None = Field(None, gt=0, le=MAX_SATELLITES)
    phasing: int | None = Field(None, ge=0, le=MAX_SATELLITES)
    altitude_km: float | None = Field(None, gt=100, lt=40000)
    inclination_deg: float | None = Field(None, ge=0, le=180)
    pattern: Literal["delta", "star"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "WalkerConfig":
        from orbitfl.constellation.walker import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {short(self.preset)}; known: {', '.join(PRESETS)}")
        if self.preset is None:
            missing = [k for k in ("planes", "per_plane", "altitude_km", "inclination_deg")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError(f"give a preset or {', '.join(missing)}")
        preset = PRESETS.get(self.preset)
        size = (self.planes or preset.planes) * (self.per_plane or preset.per_plane)
        if size > MAX_SATELLITES:
            raise ValueError(f"planes x per_plane is {size} satellites; at most "
                             f"{MAX_SATELLITES}")
        return self


def relative_to_scenario(value: Path, info: ValidationInfo) -> Path:
    """A path in a scenario, resolved against the scenario file's folder (the loader passes
    it as ``base_dir``), so a scenario runs the same from any working directory."""
    return ((info.context or {}).get("base_dir", Path(".")) / value).resolve()


class ConstellationConfig(_Strict):
    tle: Path | None = Field(None, description="element file: TLE/3LE, or OMM .json/.csv")
    walker: WalkerConfig | None = None
    select: Selection = Selection()
    skip_bad_records: bool = False

    @field_validator("tle")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = relative_to_scenario(value, info)
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> "ConstellationConfig":
        if (self.tle is None) == (self.walker is None):
            raise ValueError("give exactly one of 'tle' (an element file) and 'walker'")
        return self


class Site(_Strict):
    """A packaged catalog site by id (``svalsat``), or an inline site with coordinates;
    either may override the mask and the antenna count."""

    id: str
    lat_deg: float | None = Field(None, ge=-90, le=90)
    lon_deg: float | None = Field(None, ge=-180, le=360)
    alt_m: float = Field(0.0, ge=-1000, le=100_000, description="below the edge of space")
    min_elevation_deg: float | None = Field(None, ge=0, lt=90)
    antennas: int | None = Field(None, gt=0, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_or_inline(self) -> "Site":
        from orbitfl.constellation.stations import catalog

        if (self.lat_deg is None) != (self.lon_deg is None):
            raise ValueError("an inline site needs both lat_deg and lon_deg")
        if self.lat_deg is None and self.id not in catalog():
            close = difflib.get_close_matches(self.id, catalog(), n=3)
            hint = f" (close matches: {', '.join(map(repr, close))})" if close else ""
            raise ValueError(f"unknown ground station {short(self.id)}{hint}; see 'orbitfl "
                             f"list stations', or give lat_deg and lon_deg for a site outside "
                             f"the catalog")
        return self


class GroundStationsConfig(_Strict):
    """Named networks and/or sites; the masks and antenna counts here override the
    catalog's for every site (a site's own values override these)."""

    network: list[str] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)
    min_elevation_deg: float | None = Field(None, ge=0, lt=90)
    antennas: int | None = Field(None, gt=0, le=1000)

    @field_validator("network", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("network")
    @classmethod
    def _known_networks(cls, value: list[str]) -> list[str]:
        from orbitfl.constellation.stations import NETWORKS

        unknown = [n for n in value if n not in NETWORKS]
        if unknown:
            raise ValueError(f"unknown network {short(unknown[0])}; known: "
                             f"{', '.join(NETWORKS)}")
        return value

    @model_validator(mode="after")
    def _some_station(self) -> "GroundStationsConfig":
        if not self.network and not self.sites:
            raise ValueError("give a network or at least one site")
        return self


class LinkConfig(_Strict):
    """One direction of the ground link: a fixed rate, a named preset, or a DVB-S2 budget
    (band plus EIRP, G/T and bandwidth; the rest defaults)."""

    rate_mbps: float | None = Field(None, gt=0, le=1e6, description="up to 1 Tbit/s")
    preset: str | None = None
    band: Literal["UHF", "S", "X", "Ka"] | None = None
    frequency_ghz: float | None = Field(None, gt=0, le=1000)
    eirp_dbw: float | None = None
    gt_dbk: float | None = None
    bandwidth_mhz: float | None = Field(None, gt=0, le=1e5)
    rolloff: float = Field(0.2, ge=0.05, le=0.35)
    max_modulation: Literal["QPSK", "8PSK", "16APSK", "32APSK"] = "32APSK"
    other_losses_db: float = Field(1.0, ge=0)
    margin_db: float = Field(1.0, ge=0)
    zenith_atmospheric_loss_db: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> "LinkConfig":
        from orbitfl.constellation.links import LINK_PRESETS

        budget = [k for k in ("band", "frequency_ghz", "eirp_dbw", "gt_dbk", "bandwidth_mhz")
                  if getattr(self, k) is not None]
        kinds = (self.rate_mbps is not None) + (self.preset is not None) + bool(budget)
        if kinds != 1:
            raise ValueError("give exactly one of rate_mbps, preset, or a budget "
                             "(band, eirp_dbw, gt_dbk, bandwidth_mhz)")
        if self.preset is not None and self.preset not in LINK_PRESETS:
            raise ValueError(f"unknown preset {short(self.preset)}; known: "
                             f"{', '.join(LINK_PRESETS)}")
        if budget:
            missing = [k for k in ("eirp_dbw", "gt_dbk", "bandwidth_mhz")
                       if getattr(self, k) is None]
            if self.band is None and self.frequency_ghz is None:
                missing.insert(0, "band or frequency_ghz")
            if missing:
                raise ValueError(f"a link budget needs {', '.join(missing)}")
        return self

    def model(self):
        """The constellation layer's rate model for this link."""
        from orbitfl.constellation.links import BANDS, LINK_PRESETS, FixedRate, LinkBudget

        if self.rate_mbps is not None:
            return FixedRate(self.rate_mbps * 1e6)
        if self.preset is not None:
            return LINK_PRESETS[self.preset]
        frequency, zenith = BANDS[self.band] if self.band else (self.frequency_ghz, 0.08)
        return LinkBudget(
            frequency_ghz=self.frequency_ghz or frequency, eirp_dbw=self.eirp_dbw,
            gt_dbk=self.gt_dbk, bandwidth_mhz=self.bandwidth_mhz, rolloff=self.rolloff,
            zenith_atmospheric_loss_db=(zenith if self.zenith_atmospheric_loss_db is None
                                        else self.zenith_atmospheric_loss_db),
            other_losses_db=self.other_losses_db, margin_db=self.margin_db,
            max_modulation=self.max_modulation)


class IslConfig(_Strict):
    enabled: bool = False
    max_range_km: float = Field(5000.0, gt=0)
    grazing_altitude_km: float = Field(80.0, ge=0)
    link: LinkConfig = LinkConfig(rate_mbps=100.0)
    grid_step_s: float = Field(30.0, ge=1, le=300)


class LinksConfig(_Strict):
    downlink: LinkConfig
    uplink: LinkConfig
    isl: IslConfig = IslConfig()
    sample_s: float = Field(5.0, ge=1, le=60, description="rate sampling step along a pass")


class BackhaulConfig(_Strict):
    latency_ms: float = Field(50.0, ge=0, le=1e6)
    rate_mbps: float = Field(1000.0, gt=0, le=1e6)


class NetworkConfig(_Strict):
    antenna_policy: Literal["fifo", "elevation", "priority"] = "fifo"
    transfer_policy: Literal["resume", "restart"] = "resume"
    backhaul: BackhaulConfig = BackhaulConfig()


class ContactsConfig(_Strict):
    grid_step_s: float = Field(30.0, ge=1, le=300)
    cache: bool = True


class PowerConfig(_Strict):
    battery_wh: float = Field(80.0, gt=0, le=1e6)
    initial_soc: float = Field(0.9, ge=0, le=1)
    solar_w: float = Field(20.0, ge=0, le=1e6)
    idle_w: float = Field(6.0, ge=0, le=1e6)
    transmit_w: float = Field(15.0, ge=0, le=1e6)
    receive_w: float = Field(2.0, ge=0, le=1e6)
    train_threshold_soc: float = Field(0.4, ge=0, le=1)
    floor_soc: float = Field(0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> "PowerConfig":
        if self.floor_soc >= self.train_threshold_soc:
            raise ValueError("floor_soc must be below train_threshold_soc")
        return self


class OnboardConfig(_Strict):
    compute: str = "jetson-nano"
    utilisation: float | None = Field(None, gt=0, le=1, description="override the chip's")
    power: PowerConfig = PowerConfig()

    @field_validator("compute")
    @classmethod
    def _known_chip(cls, value: str) -> str:
        from orbitfl.constellation.compute import CHIPS

        if value not in CHIPS:
            raise ValueError(f"unknown compute profile {short(value)}; known: "
                             f"{', '.join(CHIPS)}")
        return value


class FailureConfig(_Strict):
    satellite: str
    at: Duration


class StationOutageConfig(_Strict):
    station: str
    start: Duration
    end: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "StationOutageConfig":
        if self.end <= self.start:
            raise ValueError("an outage must end after it starts")
        return self


class FaultsConfig(_Strict):
    failures: list[FailureConfig] = Field(default_factory=list)
    reboot_rate_per_day: float = Field(0.0, ge=0, le=100)
    reboot_duration: Duration = 600.0
    station_outages: list[StationOutageConfig] = Field(default_factory=list)
    link_drop_probability: float = Field(0.0, ge=0, lt=1)
    bit_error_rate: float = Field(0.0, ge=0, lt=1e-2)
    packet_bytes: int = Field(1024, gt=0, le=1 << 20)


class AcquisitionConfig(_Strict):
    """When and how often a satellite images its ground track (geo-synthetic)."""

    window: Duration = 21600.0
    interval_s: float = Field(120.0, gt=0)
    min_sun_elevation_deg: float = Field(10.0, ge=-10, lt=90)
    clouds: bool = True

    @model_validator(mode="after")
    def _bounded(self) -> "AcquisitionConfig":
        images = self.window / self.interval_s
        if images > MAX_TRACK_IMAGES:
            raise ValueError(f"window / interval_s is {images:.3g} images per satellite; at "
                             f"most {MAX_TRACK_IMAGES}")
        return self


class DataConfig(_Strict):
    dataset: Literal["geo-synthetic", "synthetic", "patternnet", "nwpu-resisc45", "eurosat",
                     "ucmerced", "loveda"] = "geo-synthetic"
    task: Literal["classification", "segmentation"] = "classification"
    path: Path | None = Field(None, description="folder of a real dataset")
    classes: int = Field(10, ge=2, le=100, description="synthetic only")
    image_size: Literal[16, 32, 64] = 32
    samples_per_class_max: int = Field(500, gt=0, le=100_000)
    imbalance_ratio: float = Field(1.0, ge=1)
    partition: Literal["orbit", "dirichlet", "iid", "pathological"] = "orbit"
    dirichlet_alpha: float = Field(0.5, gt=0)
    min_per_client: int = Field(10, ge=1, le=100_000)
    classes_per_client: int = Field(2, ge=1, le=100)
    ses_per_class: int = Field(10, ge=1, le=1000)
    test_per_class: int = Field(100, gt=0, le=10_000)
    acquisition: AcquisitionConfig = AcquisitionConfig()
    cache: bool = True

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = relative_to_scenario(value, info)
        if not path.is_dir():
            raise ValueError(f"folder not found: {path}")
        return path

    @model_validator(mode="after")
    def _consistent(self) -> "DataConfig":
        real = self.dataset not in ("geo-synthetic", "synthetic")
        if real and self.path is None:
            raise ValueError(f"the {self.dataset} dataset needs 'path' (its folder on disk)")
        if not real and self.path is not None:
            raise ValueError(f"'path' applies to real datasets, not {self.dataset}")
        if self.partition == "orbit" and self.dataset != "geo-synthetic":
            raise ValueError("the orbit partition needs the geo-synthetic dataset")
        segmentation_data = self.dataset in ("geo-synthetic", "loveda")
        if self.task == "segmentation" and not segmentation_data:
            raise ValueError("segmentation needs the geo-synthetic or loveda dataset")
        if self.dataset == "loveda" and self.task != "segmentation":
            raise ValueError("loveda is a segmentation dataset: set task: segmentation")
        if self.task == "segmentation" and self.partition not in ("orbit", "iid"):
            raise ValueError("segmentation data splits by orbit or iid")
        self._no_ignored_options()
        return self._fits_in_memory()

    def _no_ignored_options(self) -> None:
        """An option the chosen dataset would ignore is an error, not a silent no-op: a
        study that sets an imbalance factor must get one."""
        defaults = type(self).model_fields
        if self.classes != defaults["classes"].default and self.dataset != "synthetic":
            raise ValueError(f"'classes' applies to the synthetic dataset; {self.dataset} "
                             "has its own classes")
        if self.imbalance_ratio != 1 and (self.dataset in ("geo-synthetic", "loveda")
                                          or self.partition == "orbit"):
            raise ValueError(f"'imbalance_ratio' applies to synthetic and folder datasets; "
                             f"{self.dataset} takes the class mix its imagery has (the run "
                             "reports its true imbalance factor)")

    def _fits_in_memory(self) -> "DataConfig":
        """The generated images (training pool for synthetic, test set and SES) as float32
        tensors must fit ``MAX_IMAGE_BYTES``; real datasets are as big as the user's disk."""
        from orbitfl.fl.geo.landcover import SCENE_CLASSES

        if self.dataset == "synthetic":
            classes, per_class = self.classes, self.samples_per_class_max
        elif self.dataset == "geo-synthetic":
            classes, per_class = len(SCENE_CLASSES), 0
        else:
            return self
        images = classes * (per_class + self.test_per_class + self.ses_per_class)
        size = image_bytes(images, self.image_size)
        if size > MAX_IMAGE_BYTES:
            raise ValueError(f"the generated images take {size / 2**30:.1f} GiB ({images} of "
                             f"3 x {self.image_size} x {self.image_size} float32); at most "
                             f"{MAX_IMAGE_BYTES / 2**30:g} GiB: lower samples_per_class_max, "
                             "test_per_class, ses_per_class or image_size")
        return self


class ModelConfig(_Strict):
    name: Literal["small-cnn", "resnet18", "seg-unet"] = "small-cnn"


class ScheduleConfig(_Strict):
    """sync: rounds close at ``min_clients`` updates or the deadline. async (FedBuff): the
    server aggregates every ``fl.fedbuff.buffer_size`` arrivals; ``deadline`` then bounds
    how long a client may take before its job is abandoned."""

    mode: Literal["sync", "async"] = "sync"
    deadline: Duration
    min_clients: int = Field(1, gt=0, le=MAX_SATELLITES)
    selection: Literal["all", "first-k", "random-k", "next-contact"] = "all"
    clients_per_round: int | None = Field(None, gt=0, le=MAX_SATELLITES)
    evaluate_every: int = Field(1, gt=0, le=MAX_ROUNDS)
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop at the first evaluated round whose accuracy "
        "(pixel accuracy for segmentation) reaches this; the run records when it did")


class FedProxConfig(_Strict):
    mu: float = Field(0.01, ge=0)


class FedBuffConfig(_Strict):
    buffer_size: int = Field(5, gt=0, le=MAX_SATELLITES)
    staleness_exponent: float = Field(0.5, ge=0)
    server_lr: float = Field(1.0, gt=0)


class SafeSwitches(_Strict):
    cro: bool = True
    fau: bool = True
    dmr: bool = True
    ace: bool = True
    cro_mode: Literal["grad_norm", "ratio_loss"] = "grad_norm"
    cro_smoothing: bool = True
    fau_scope: Literal["all", "backbone"] = "all"
    fau_payload: Literal["features", "gram"] = "features"
    fau_cka: bool = True
    fau_tau: float = Field(0.5, gt=0, description="mu of a client drifting as usual")
    fau_mu_max: float = Field(0.8, ge=0, lt=1, description="upper bound on FAU's mu")
    fau_mu_fixed: float = Field(0.5, ge=0, le=1)
    dmr_cro: Literal["ramp_up", "constant", "ramp_down"] = "ramp_up"
    ace_mode: Literal["residual", "gate"] = "residual"
    ace_contexts: int = Field(8, gt=0, le=1024)
    ace_dim: int = Field(128, gt=0, le=4096)
    ace_prior: float = Field(0.3, gt=0, lt=1)
    ace_prior_weight: float = Field(0.3, ge=0)
    ace_query_residual: bool = True


class CompressionConfig(_Strict):
    """Codecs by link direction, named like the byte columns (up = ground to satellites):
    ``to_satellites`` for the global model the server broadcasts, ``to_ground`` for the
    updates satellites send back (where top-k with error feedback applies)."""

    to_satellites: Literal["fp32", "fp16", "int8", "int8-channel"] = "fp32"
    to_ground: Literal["fp32", "fp16", "int8", "int8-channel", "topk"] = "fp32"
    topk_ratio: float = Field(0.01, gt=0, le=1)


class FLConfig(_Strict):
    strategy: Literal["fedavg", "fedprox", "fedbuff", "safe"] = "fedavg"
    rounds: int = Field(gt=0, le=MAX_ROUNDS)
    schedule: ScheduleConfig
    local_epochs: int = Field(1, gt=0, le=1000)
    batch_size: int = Field(32, gt=1, le=65_536)
    lr: float = Field(0.01, gt=0, le=10)
    augment: bool = False
    fedprox: FedProxConfig = FedProxConfig()
    fedbuff: FedBuffConfig = FedBuffConfig()
    safe: SafeSwitches = SafeSwitches()
    compression: CompressionConfig = CompressionConfig()

    @model_validator(mode="after")
    def _mode_fits_strategy(self) -> "FLConfig":
        if (self.strategy == "fedbuff") != (self.schedule.mode == "async"):
            raise ValueError("fedbuff runs with schedule.mode async, the others with sync")
        if self.schedule.selection in ("first-k", "random-k") and \
                self.schedule.clients_per_round is None:
            raise ValueError(f"selection {self.schedule.selection} needs "
                             "schedule.clients_per_round")
        return self


class Scenario(_Strict):
    name: str = Field(min_length=1, description="also the run directory's name")
    seed: int = Field(ge=0, le=2**63 - 1, description="int64, as the tables store it")
    epoch: datetime
    duration: Duration
    constellation: ConstellationConfig
    ground_stations: GroundStationsConfig
    links: LinksConfig
    network: NetworkConfig = NetworkConfig()
    contacts: ContactsConfig = ContactsConfig()
    onboard: OnboardConfig = OnboardConfig()
    faults: FaultsConfig = FaultsConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    fl: FLConfig

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        """The name becomes ``runs/<name>-<time>``: one folder, no way out of ``runs``."""
        if len(value.encode()) > 200:  # a file name holds 255 bytes, the time stamp 17
            raise ValueError("at most 200 bytes (it names the run directory)")
        if "/" in value or "\\" in value or value.startswith(".") or \
                any(ord(c) < 32 for c in value):
            raise ValueError(f"must not contain '/' or '\\', control characters or start "
                             f"with '.', got {short(value)}")
        return value

    @field_validator("epoch")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Naive times are UTC, the convention of element sets and ground operations."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _model_fits_task(self) -> "Scenario":
        if (self.data.task == "segmentation") != (self.model.name == "seg-unet"):
            raise ValueError("model.name seg-unet is the segmentation model: use it exactly "
                             "when data.task is segmentation")
        return self

    def content_hash(self) -> str:
        """SHA-256 of the validated scenario with the element file's bytes in place of its
        path, so a moved copy hashes the same and an edited element file does not."""
        document = self.model_dump(mode="json")
        document["constellation"]["tle_sha256"] = self.tle_sha256()
        del document["constellation"]["tle"]
        blob = json.dumps(document, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def tle_sha256(self) -> str | None:
        """The element file's SHA-256; None for a Walker shell, which has no file (its
        parameters are part of the scenario itself)."""
        tle = self.constellation.tle
        return None if tle is None else file_sha256(tle)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_scenario(path: str | Path, overrides: Sequence[tuple[str, Any]] = ()) -> Scenario:
    """Read and validate a scenario file, with ``--set`` ``overrides`` (dotted YAML path,
    value) applied first; raises ``InputError``, one line per problem."""
    from orbitfl.overrides import apply_overrides

    path = Path(path)
    document = load_yaml(read_user_file(path, "scenario file", MAX_SCENARIO_BYTES), path)
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a mapping of scenario keys at the top level")
    document = apply_overrides(document, overrides, path)
    try:
        scenario = Scenario.model_validate(document, context={"base_dir": path.parent})
    except ValidationError as err:
        raise InputError("\n".join(f"{path}: {line}" for line in
                                    describe_validation_error(err, Scenario).splitlines())) \
            from None
    _check_faults_within_mission(scenario, path)
    return scenario


def _check_faults_within_mission(scenario: Scenario, path: Path) -> None:
    """A failure or an outage that starts after the mission ends would silently never
    happen: the user meant something else."""
    end = scenario.duration
    starts = [(f"faults.failures.{i}.at", f.at) for i, f in enumerate(scenario.faults.failures)]
    starts += [(f"faults.station_outages.{i}.start", o.start)
               for i, o in enumerate(scenario.faults.station_outages)]
    for where, start in starts:
        if start >= end:
            raise InputError(f"{path}: {where}: {format_duration(start)} is after the mission "
                             f"ends (duration {format_duration(end)})")


MAX_ERROR_LINES = 20  # a file wrong everywhere still gives a screenful, not thousands


def describe_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    """Every error of the file, one 'yaml.path: problem' line each (a user fixes them all
    in one pass instead of one per run); the alternatives of a union are one line."""
    lines = [_describe(loc, errors, model) for loc, errors in _by_field(err, model).items()]
    if len(lines) > MAX_ERROR_LINES:
        lines[MAX_ERROR_LINES - 1:] = [f"... and {len(lines) - MAX_ERROR_LINES + 1} more "
                                       "errors"]
    return "\n".join(lines)


def _by_field(err: ValidationError, model: type[BaseModel]) -> dict[tuple, list[dict]]:
    """Errors grouped by the YAML path they are about: pydantic adds a union member's tag
    ('str', 'list[str]') after the field, one error per member."""
    groups: dict[tuple, list[dict]] = {}
    for error in err.errors(include_url=False):
        loc: list[str] = []
        for part in error["loc"]:
            step = str(part)
            if error["type"] != "extra_forbidden" and not isinstance(part, int) and \
                    step not in _field_names(model, loc):
                break  # a union member's tag
            loc.append(step)
        groups.setdefault(tuple(loc), []).append(error)
    return groups


def _describe(loc: tuple[str, ...], errors: list[dict], model: type[BaseModel]) -> str:
    first = errors[0]
    kind = first["type"]
    if kind == "extra_forbidden":
        parent, key = list(loc[:-1]), loc[-1]
        known = _field_names(model, parent)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = ".".join(p[:ECHO_CHARS] for p in parent) or "top level"
        return f"{where}: unknown key {short(first['loc'][-1])}{hint}; allowed: " \
               f"{', '.join(known)}"
    where = ".".join(p[:ECHO_CHARS] for p in loc) or "top level"
    if kind == "missing":
        return f"{where}: missing required key"
    if kind == "model_type":
        return f"{where}: {_expected_mapping(first['ctx']['class_name'])}, got " \
               f"{short(first.get('input'))}"
    message = first["msg"].removeprefix("Value error, ")
    if kind.startswith("value_error") or kind == "assertion_error":
        return f"{where}: {message}"
    if len(errors) > 1:
        message = "input should be " + " or ".join(dict.fromkeys(
            e["msg"].removeprefix("Input should be ") for e in errors))
    return f"{where}: {message[0].lower()}{message[1:]} (got {short(first.get('input'))})"


_SECTION_WORDS = {
    "LinkConfig": "a link: rate_mbps, a preset (see 'orbitfl list links') or a DVB-S2 budget "
                  "(band, eirp_dbw, gt_dbk, bandwidth_mhz)",
    "Site": "a ground station: a catalog id (see 'orbitfl list stations') or an inline site "
            "with id, lat_deg and lon_deg",
    "WalkerConfig": "a Walker shell: a preset (see 'orbitfl list walker') or planes, "
                    "per_plane, altitude_km and inclination_deg",
}


def _expected_mapping(class_name: str) -> str:
    """'Input should be a valid dictionary or instance of LinkConfig', in the project's words:
    what the section is, and how it may be written."""
    if class_name in _SECTION_WORDS:
        return f"expected {_SECTION_WORDS[class_name]}"
    return "expected a mapping of keys (a section), not a single value"


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the sub-model at ``loc`` (list indices skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if part.isdigit():
            continue
        field = current.model_fields.get(part)
        current = section_model(field.annotation) if field is not None else None
        if current is None:
            return []
    return list(current.model_fields)


def annotation_options(annotation: Any) -> tuple:
    """The members of ``X | Y | None`` (or ``(X,)``)."""
    args = typing.get_args(annotation)
    return args if args and typing.get_origin(annotation) is not list else (annotation,)


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The section a field holds: its model, or its list items' model (None for a value)."""
    for option in annotation_options(annotation):
        if typing.get_origin(option) is list:
            option = typing.get_args(option)[0]
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None
