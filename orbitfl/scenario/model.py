"""The scenario file: a typed, frozen schema and a loader whose errors are one line.

Every error names the file, the YAML path (``fl.schedule.deadline``) and the problem.
Paths inside a scenario resolve relative to the scenario file.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from orbitfl.constellation.atmosphere import WeatherSpec
from orbitfl.constellation.faults import FaultSpec
from orbitfl.constellation.ground_link import Backhaul
from orbitfl.constellation.isl import IslModel
from orbitfl.constellation.links import LinkSpec
from orbitfl.constellation.power import PowerSpec
from orbitfl.constellation.stations import catalog_sha256
from orbitfl.constellation.walker import WalkerSpec
from orbitfl.core.errors import InputError, read_user_file, short
from orbitfl.core.limits import (
    ECHO_CHARS,
    MAX_ROUNDS,
    MAX_SATELLITES,
    MAX_SCENARIO_BYTES,
)
from orbitfl.core.options import Duration, format_duration, parse_duration  # noqa: F401
from orbitfl.fl import registry
from orbitfl.fl.config import (
    CompressionConfig,
    DataSpec,
    Execution,
    FedBuffConfig,
    FedProxConfig,
    SafeConfig,
    TrainConfig,
)
from orbitfl.scenario.overrides import apply_overrides
from orbitfl.scenario.schema_fields import section_fields, section_model
from orbitfl.scenario.strict_yaml import load_yaml


class _Strict(BaseModel):
    """Every section: unknown keys are errors, and no float anywhere may be inf or nan
    (they pass ``gt``/``le`` bounds and then crash or hang a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Selection(_Strict):
    name: str | list[str] | None = Field(
        None, description="satellite name pattern(s), shell-style (`FLOCK*`), case-insensitive")
    norad_ids: list[int] | None = Field(None, description="NORAD catalog numbers to keep")
    limit: int | None = Field(
        None, gt=0, description="keep at most this many satellites, in file order")


def relative_to_scenario(value: Path, info: ValidationInfo) -> Path:
    """A path in a scenario, resolved against the scenario file's folder (the loader passes
    it as ``base_dir``), so a scenario runs the same from any working directory."""
    return ((info.context or {}).get("base_dir", Path(".")) / value).resolve()


class ConstellationConfig(_Strict):
    tle: Path | None = Field(
        None, description="element file (TLE/3LE, or OMM .json/.csv), relative to the scenario "
                          "file")
    walker: WalkerSpec | None = Field(
        None, description="a designed Walker shell instead of an element file")
    select: Selection = Field(Selection(), description="which satellites of the element file fly")
    skip_bad_records: bool = Field(
        False, description="skip element records SGP4 rejects (with a warning) instead of failing")

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
    either may override the mask, the antennas (count, bands, G/T, EIRP) and the links."""

    id: str = Field(
        description="catalog id (see 'orbitfl list stations') or the name of an inline site")
    lat_deg: float | None = Field(
        None, ge=-90, le=90, description="geodetic latitude of an inline site [deg]")
    lon_deg: float | None = Field(
        None, ge=-180, le=360, description="longitude of an inline site, east positive [deg]")
    alt_m: float = Field(
        0.0, ge=-1000, le=100_000, description="site altitude above the WGS84 ellipsoid [m]")
    min_elevation_deg: float | None = Field(
        None, ge=0, lt=90, description="elevation mask of this site, overrides the catalog's [deg]")
    antennas: int | None = Field(
        None, gt=0, le=1000, description="antennas of this site (simultaneous passes), overrides "
                                         "the catalog's")
    bands: list[Literal["UHF", "S", "X", "Ka"]] | None = Field(
        None, description="bands its antennas serve, overrides the catalog's (a link in "
                          "another band is warned about)")
    gt_dbk: float | None = Field(
        None, ge=-50, le=80, description="receive G/T of its antennas: replaces a DVB-S2 "
                                         "downlink budget's gt_dbk at this site [dB/K]")
    eirp_dbw: float | None = Field(
        None, ge=-50, le=120, description="transmit EIRP of its antennas: replaces a DVB-S2 "
                                          "uplink budget's eirp_dbw at this site [dBW]")
    downlink: LinkSpec | None = Field(
        None, description="this site's downlink, instead of links.downlink")
    uplink: LinkSpec | None = Field(
        None, description="this site's uplink, instead of links.uplink")
    horizon_mask: list[tuple[float, float]] | str | None = Field(
        None, description="lowest usable elevation by azimuth, instead of min_elevation_deg: "
                          "[[azimuth_deg, elevation_deg], ...] with azimuths increasing in "
                          "[0, 360) and elevations in [-5, 90], linear between and periodic, "
                          "or a CSV file (columns azimuth_deg,elevation_deg) relative to the "
                          "scenario file [deg]")

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value

    @field_validator("horizon_mask")
    @classmethod
    def _mask_table(cls, value: list | str | None,
                    info: ValidationInfo) -> list[tuple[float, float]] | None:
        """The table itself (a file is read now, so a run's hash covers its content)."""
        from orbitfl.constellation.horizon import read_mask_csv, table_problem

        if isinstance(value, str):
            try:
                return read_mask_csv(relative_to_scenario(Path(value), info))
            except InputError as err:
                raise ValueError(str(err)) from None
        problem = None if value is None else table_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _known_or_inline(self) -> "Site":
        from orbitfl.constellation.stations import catalog

        if (self.lat_deg is None) != (self.lon_deg is None):
            raise ValueError("an inline site needs both lat_deg and lon_deg")
        if self.horizon_mask is not None and self.min_elevation_deg is not None:
            raise ValueError("give one of min_elevation_deg and horizon_mask (the mask's "
                             "lowest point is the site's minimum elevation)")
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

    network: list[str] = Field(
        default_factory=list, description="network preset(s) (see 'orbitfl list networks')")
    sites: list[Site] = Field(
        default_factory=list, description="catalog ids or inline sites, in addition to the "
                                          "networks")
    min_elevation_deg: float | None = Field(
        None, ge=0, lt=90, description="elevation mask for every site without its own [deg]")
    antennas: int | None = Field(
        None, gt=0, le=1000, description="antennas (simultaneous passes) for every site without "
                                         "its own (default: each site's published count, "
                                         "see 'orbitfl list stations')")
    limit: int | None = Field(
        None, gt=0, le=10_000, description="use only the first N stations of the networks "
                                           "and sites, in the order listed (sweep it to ask "
                                           "how many stations a mission needs)")

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


class LinksConfig(_Strict):
    downlink: LinkSpec = Field(description="satellite-to-ground link")
    uplink: LinkSpec = Field(description="ground-to-satellite link")
    isl: IslModel = Field(IslModel(), description="inter-satellite links")
    sample_s: float = Field(5.0, ge=1, le=60, description="rate sampling step along a pass [s]")
    weather: WeatherSpec | None = Field(
        None, description="ITU-R rain, cloud and gas attenuation in every DVB-S2 budget, at an "
                          "availability or drawn per pass (docs/ground-segment.md); unset: the "
                          "band's clear-sky estimate")


class NetworkConfig(_Strict):
    mode: Literal["links", "ideal"] = Field(
        "links", description="links: payloads cross contact windows at the link rates; ideal: "
                             "every satellite always reachable, transfers instantaneous, bytes "
                             "still counted (to study the learning alone)")
    antenna_policy: Literal["fifo", "elevation", "priority"] = Field(
        "fifo", description="who gets a free antenna: first come (fifo), highest elevation, or "
                            "most urgent (priority)")
    transfer_policy: Literal["resume", "restart"] = Field(
        "resume", description="a transfer cut by the end of a pass resumes in the next pass or "
                              "restarts")
    backhaul: Backhaul = Field(
        Backhaul(), description="the terrestrial link from stations to the server")


class ContactsConfig(_Strict):
    grid_step_s: float = Field(
        90.0, ge=1, le=300, description="sampling step of the contact-window search: it sets "
                                        "the cost, not the accuracy (rises, sets and peaks are "
                                        "refined on exact orbits) [s]")
    cache: bool = Field(
        True, description="reuse contact plans computed before (in the user cache folder)")
    refraction: bool = Field(
        False, description="masks apply to the apparent elevation: standard-atmosphere "
                           "refraction (skyfield's) brings rises earlier and sets later by "
                           "seconds at low masks; off, the geometric line of sight, as the "
                           "published pass figures and skyfield's find_events use")


class OnboardConfig(_Strict):
    compute: str = Field("jetson-nano", description="onboard chip (see 'orbitfl list chips')")
    utilisation: float | None = Field(
        None, gt=0, le=1, description="sustained fraction of the chip's peak FLOP/s, overrides the "
                                      "chip's")
    power: PowerSpec = Field(PowerSpec(), description="battery, solar array and loads")

    @field_validator("compute")
    @classmethod
    def _known_chip(cls, value: str) -> str:
        from orbitfl.constellation.compute import CHIPS

        if value not in CHIPS:
            raise ValueError(f"unknown compute profile {short(value)}; known: "
                             f"{', '.join(CHIPS)}")
        return value


def _registered(kind: str, value: str) -> str:
    """A name of the registry (built-in or installed), or a 'package.module:Name'
    reference: checked for its form here; ``orbitfl validate`` imports it."""
    if ":" in value:
        registry.reference(kind, value)
    else:
        registry.entry(kind, value)
    return value


def _names_in_schema(kind: str, references: bool = True):
    """The JSON Schema of a name field, made when the schema is: the registry's names of
    ``kind`` (built-in and installed), or a 'package.module:Name' reference."""
    def names(schema: dict) -> None:
        known = {"enum": registry.names(kind)}
        named = {"anyOf": [known, {"type": "string", "pattern": registry.REFERENCE.pattern}]} \
            if references else known
        members = schema.get("anyOf", [schema])
        for i, member in enumerate(members):
            if member.get("type") == "string":
                members[i] = {**{k: v for k, v in member.items() if k != "type"}, **named}
        if "anyOf" not in schema and schema is not members[0]:
            schema.clear()
            schema.update(members[0])
    return names


class ModelConfig(_Strict):
    name: str = Field(
        "small-cnn", description="model architecture: a built-in ("
                                 f"{', '.join(registry.BUILT_INS['model'])}; seg-unet exactly "
                                 "when data.task is segmentation) or an installed plugin's "
                                 "name ('orbitfl list models')",
        json_schema_extra=_names_in_schema("model", references=False))
    factory: str | None = Field(
        None, description="your own model instead: 'package.module:build', a function "
                          "build(classes, **options) returning a torch.nn.Module "
                          "(docs/extending.md)")
    options: dict[str, Any] | None = Field(
        None, description="keyword arguments of the model's factory")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered("model", value)

    @field_validator("factory")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        return None if value is None else _registered("model", value)

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if self.factory is not None and "name" in self.model_fields_set:
            raise ValueError("give name or factory, not both")
        if self.options is not None and self.factory is None and not self.entry.target:
            raise ValueError("options apply to a model from a factory or a plugin")
        return self

    @property
    def entry(self) -> registry.Entry:
        """What builds the model: a factory reference, a plugin, or a built-in."""
        if self.factory is not None:
            return registry.reference("model", self.factory)
        return _entry("model", self.name)


def _code_versions(item: registry.Entry, options: dict[str, Any]) -> dict[str, str | None]:
    """The versions of the code a strategy plugin's options name (``Strategy.code_versions``);
    none when the class cannot be loaded (validation says why)."""
    from orbitfl.fl.extensions import strategy_class

    try:
        return strategy_class(item).code_versions(options)
    except registry.PluginError:
        return {}


def _entry(kind: str, value: str) -> registry.Entry:
    return registry.reference(kind, value) if ":" in value else registry.entry(kind, value)


class StrategyRef(_Strict):
    """A strategy class of your own (docs/extending.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True, serialize_by_alias=True)

    class_: str = Field(alias="class", description="'package.module:Class', a subclass of "
                                                   "orbitfl.fl.strategy.Strategy")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the class's options (its Options dataclass)")

    @field_validator("class_")
    @classmethod
    def _reference(cls, value: str) -> str:
        registry.reference("strategy", value)
        return value


def _train_option(name: str) -> FieldInfo:
    """``TrainConfig``'s declaration of option ``name`` (default, bounds, description): the
    ``fl`` section writes the training options flat, under the names it has always used."""
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return FieldInfo.from_annotated_attribute(typing.get_type_hints(TrainConfig)[name], field)


class ScheduleConfig(_Strict):
    """sync: rounds close at ``min_clients`` updates or the deadline. async (FedBuff): the
    server aggregates every ``fl.fedbuff.buffer_size`` arrivals; ``deadline`` then bounds
    how long a client may take before its job is abandoned."""

    mode: Literal["sync", "async"] = Field("sync", description="sync rounds, or async (FedBuff)")
    deadline: Duration = Field(
        description="sync: a round closes at this time after it opens; async: a job is abandoned "
                    "after it [s]")
    min_clients: int = Field(
        1, gt=0, le=MAX_SATELLITES, description="sync: updates that close a round before the "
                                                "deadline")
    selection: Literal["all", "first-k", "random-k", "next-contact"] = Field(
        "all", description="which idle satellites a round asks: all, first-k (first k answers "
                           "count), random-k, next-contact")
    clients_per_round: int | None = Field(
        None, gt=0, le=MAX_SATELLITES, description="k of first-k, random-k and next-contact")
    evaluate_every: int = Field(
        1, gt=0, le=MAX_ROUNDS, description="evaluate the global model every this many rounds (and "
                                            "at the last)")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop at the first evaluated round whose accuracy (mIoU "
                                      "for segmentation: its pixel accuracy counts the "
                                      "background) reaches this; the run records when it did")
    personalised: Literal["every", "last"] = Field(
        "every", description="score the clients' personalised models at every evaluation, or "
                             "at the last round only (each costs one test pass per client)")
    fine_tune: bool = Field(
        False, description="for a strategy without personalised models: score the global "
                           "model fine-tuned on each client's data for one local job as that "
                           "client's personalised model (FedAvg + local fine-tuning)")


class FederatedConfig(_Strict):
    """The ``fl`` section; a strategy gets its parts as ``fl.strategy.FLConfig`` (with the
    seed and ``train()``), which holds these sections rather than copies of them."""

    strategy: str | StrategyRef = Field(
        "fedavg", description="federated strategy: a built-in ("
                              f"{', '.join(registry.BUILT_INS['strategy'])}; fedbuff runs "
                              "with schedule.mode async) or installed plugin's name ('orbitfl "
                              "list strategies'), or your own class as {class: "
                              "'package.module:Class', options: {...}} (docs/extending.md)",
        json_schema_extra=_names_in_schema("strategy"))
    rounds: int = Field(gt=0, le=MAX_ROUNDS, description="aggregation rounds (async: aggregations)")
    schedule: ScheduleConfig = Field(description="when rounds open and close, and who takes part")
    local_epochs: int = _train_option("epochs")
    batch_size: int = _train_option("batch_size")
    lr: float = _train_option("lr")
    augment: bool = _train_option("augment")
    fedprox: FedProxConfig = Field(FedProxConfig(), description="FedProx's options")
    fedbuff: FedBuffConfig = Field(FedBuffConfig(), description="FedBuff's options")
    safe: SafeConfig = Field(SafeConfig(), description="SAFE's switches")
    compression: CompressionConfig = Field(
        CompressionConfig(), description="payload codecs by link direction")

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str | StrategyRef) -> str | StrategyRef:
        return _registered("strategy", value) if isinstance(value, str) else value

    @property
    def strategy_entry(self) -> registry.Entry:
        """The registry's entry of the strategy (a reference for a class of your own)."""
        if isinstance(self.strategy, StrategyRef):
            return registry.reference("strategy", self.strategy.class_)
        return _entry("strategy", self.strategy)

    @property
    def strategy_options(self) -> dict[str, Any]:
        return self.strategy.options if isinstance(self.strategy, StrategyRef) else {}

    @model_validator(mode="after")
    def _mode_fits_strategy(self) -> "FederatedConfig":
        entry = self.strategy_entry
        if entry.built_in and entry.asynchronous != (self.schedule.mode == "async"):
            raise ValueError("fedbuff runs with schedule.mode async, the others with sync")
        if self.schedule.selection in ("first-k", "random-k") and \
                self.schedule.clients_per_round is None:
            raise ValueError(f"selection {self.schedule.selection} needs "
                             "schedule.clients_per_round")
        return self

    def train(self) -> TrainConfig:
        """The learning layer's ``TrainConfig`` from the flat training keys."""
        return TrainConfig(epochs=self.local_epochs, batch_size=self.batch_size, lr=self.lr,
                           augment=self.augment)


class ReportConfig(_Strict):
    figures: bool = Field(
        True, description="draw the run's figures and dashboard.html (off for sweeps of many "
                          "small runs: 'orbitfl report RUN_DIR' draws them later)")


class Scenario(_Strict):
    name: str = Field(min_length=1, description="scenario name; also the run directory's name")
    seed: int = Field(
        ge=0, le=2**63 - 1, description="seed of every random choice (int64, as the tables store "
                                        "it)")
    epoch: datetime = Field(description="simulation start, UTC unless a zone is given")
    duration: Duration = Field(description="simulated time after the epoch [s]")
    constellation: ConstellationConfig = Field(
        description="the satellites: an element file or a Walker shell")
    ground_stations: GroundStationsConfig = Field(
        description="ground stations: networks and/or sites")
    links: LinksConfig = Field(description="ground links and inter-satellite links")
    network: NetworkConfig = Field(
        NetworkConfig(), description="antenna and transfer policies, backhaul")
    contacts: ContactsConfig = Field(ContactsConfig(), description="contact-window search")
    onboard: OnboardConfig = Field(OnboardConfig(), description="onboard compute and power")
    faults: FaultSpec = Field(
        FaultSpec(), description="failures, reboots, outages and link errors")
    data: DataSpec = Field(DataSpec(), description="dataset, partition and test sets")
    model: ModelConfig = Field(ModelConfig(), description="the model trained")
    fl: FederatedConfig | None = Field(
        None, description="federated learning; without it the scenario describes a contact "
                          "plan only ('orbitfl contacts'), which 'orbitfl run' refuses")
    report: ReportConfig = Field(ReportConfig(), description="what the run draws")
    execution: Execution = Field(
        Execution(), description="where clients train (the backend and worker count never "
                                 "change the results)")

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
        if self.model.entry.built_in and \
                (self.data.task == "segmentation") != (self.model.name == "seg-unet"):
            raise ValueError("model.name seg-unet is the segmentation model: use it exactly "
                             "when data.task is segmentation")
        return self

    @property
    def learns(self) -> bool:
        """Whether the scenario describes a learning run (it has an ``fl`` section); without
        one it is a contact plan: no data, model or land cover is needed."""
        return self.fl is not None

    def with_overrides(self, values: dict[str, Any]) -> "Scenario":
        """A new validated scenario with ``{"fl.rounds": 3, ...}`` set (dotted YAML paths).
        Its file paths were made absolute when this one was validated, so they stay
        anchored to the original file; a relative path among ``values`` is relative to the
        current folder, as on the command line."""
        return scenario_from_mapping(self.model_dump(mode="json"), IN_MEMORY, Path.cwd(),
                                     list(values.items()))

    def content_hash(self) -> str:
        """SHA-256 of the validated scenario with the element file's bytes in place of its
        path, so a moved copy hashes the same and an edited element file does not, and with
        the station catalog's bytes where it names catalog sites (``catalog_sha256``); the
        execution section is left out (a run started serially may resume on a pool)."""
        document = self.model_dump(mode="json")
        del document["execution"]  # where clients train does not change the results
        for path in ADDED_LATER:  # at their default, older runs keep their hash
            _drop_at_default(document, path, ADDED_LATER_DEFAULTS.get(path))
        plugins = self.plugin_versions()
        if plugins:  # shipped scenarios name none: their hashes stay as they were
            document["plugins"] = plugins
        document["constellation"]["tle_sha256"] = self.tle_sha256()
        del document["constellation"]["tle"]
        if self.uses_station_catalog():
            document["ground_stations"]["catalog_sha256"] = catalog_sha256()
        blob = json.dumps(document, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def uses_station_catalog(self) -> bool:
        """Whether a station comes from the packaged catalog (a network, or a site given by
        id alone), rather than wholly from the scenario."""
        gs = self.ground_stations
        return bool(gs.network) or any(site.lat_deg is None for site in gs.sites)

    def plugin_entries(self) -> dict[str, registry.Entry]:
        """The extension points the scenario names that are not built in, by YAML path."""
        found = {"model": self.model.entry, "data": _entry("dataset", self.data.source)}
        if self.fl is not None:
            found["fl.strategy"] = self.fl.strategy_entry
        return {where: e for where, e in found.items() if not e.built_in}

    def plugin_versions(self) -> dict[str, dict[str, Any]]:
        """Each plugin's name and version (``registry.version``), for the content hash."""
        found: dict[str, dict[str, Any]] = {
            where: {"name": e.name, "version": registry.version(e)}
            for where, e in self.plugin_entries().items()}
        if "fl.strategy" in found and self.fl is not None:
            uses = _code_versions(self.fl.strategy_entry, self.fl.strategy_options)
            if uses:  # what the options name (a Flower app): only then, so others keep hashes
                found["fl.strategy"]["uses"] = uses
        return found

    def tle_sha256(self) -> str | None:
        """The element file's SHA-256; None for a Walker shell, which has no file (its
        parameters are part of the scenario itself)."""
        tle = self.constellation.tle
        return None if tle is None else file_sha256(tle)


# Options added (or given a new default) after runs were published: left out of the
# content hash while they hold their neutral value, so they change a scenario's hash only
# when set, and run directories, checkpoints and sweeps that do not set them stay valid.
# A path's "*" stands for every item of a list; an option's neutral value is None unless
# listed in ADDED_LATER_DEFAULTS. ACE's gate default and FAU's absolute divergence (issue 23)
# changed what every SAFE run computes; their hash changed once, with them.
ADDED_LATER = (("ground_stations", "limit"), ("data", "validation_per_class"),
               ("model", "factory"), ("model", "options"), ("data", "factory"), ("data", "options"),
               ("data", "object_fraction"), ("contacts", "refraction"), ("links", "weather"),
               ("fl", "schedule", "personalised"), ("fl", "schedule", "fine_tune"),
               ("fl", "safe", "ace_mode"), ("fl", "safe", "ace_client_contexts"),
               ("fl", "safe", "fau_divergence"), ("fl", "safe", "fau_divergence_ref"),
               *(("ground_stations", "sites", "*", key) for key in
                 ("bands", "gt_dbk", "eirp_dbw", "downlink", "uplink", "horizon_mask")))
ADDED_LATER_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("contacts", "refraction"): False, ("fl", "schedule", "personalised"): "every",
    ("fl", "schedule", "fine_tune"): False, ("fl", "safe", "ace_mode"): "gate",
    ("fl", "safe", "ace_client_contexts"): True, ("fl", "safe", "fau_divergence"): "absolute",
    ("fl", "safe", "fau_divergence_ref"): 0.1}


def _drop_at_default(node: Any, path: tuple[str, ...], default: Any) -> None:
    """Remove the option at ``path`` of a dumped scenario where it holds ``default``."""
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else ():
            _drop_at_default(item, rest, default)
    elif isinstance(node, dict) and head in node:
        if not rest:
            if node[head] == default:
                del node[head]
        else:
            _drop_at_default(node[head], rest, default)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_scenario(path: str | Path, overrides: Sequence[tuple[str, Any]] = ()) -> Scenario:
    """Read and validate a scenario file, with ``--set`` ``overrides`` (dotted YAML path,
    value) applied first; raises ``InputError``, one line per problem."""
    path = Path(path)
    document = load_yaml(read_user_file(path, "scenario file", MAX_SCENARIO_BYTES), path)
    return scenario_from_mapping(document, path, path.parent, overrides)


IN_MEMORY = Path("<scenario>")  # how errors name a scenario that came from no file


def scenario_from_mapping(document: Any, origin: Path = IN_MEMORY,
                          base_dir: Path | None = None,
                          overrides: Sequence[tuple[str, Any]] = ()) -> Scenario:
    """Validate a scenario mapping (a parsed file at ``origin``, or one built in Python);
    relative paths in it resolve against ``base_dir`` (default: the current folder)."""
    if not isinstance(document, dict):
        raise InputError(f"{origin}: expected a mapping of scenario keys at the top level")
    document = apply_overrides(document, overrides, origin, Scenario)
    context = {"base_dir": Path(base_dir) if base_dir is not None else Path.cwd()}
    try:
        scenario = Scenario.model_validate(document, context=context)
    except ValidationError as err:
        raise InputError("\n".join(f"{origin}: {line}" for line in
                                    describe_validation_error(err, Scenario).splitlines())) \
            from None
    _check_faults_within_mission(scenario, origin)
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
            if error["type"] not in _UNKNOWN_KEY and not isinstance(part, int) and \
                    step not in _field_names(model, loc):
                break  # a union member's tag
            loc.append(step)
        groups.setdefault(tuple(loc), []).append(error)
    return groups


_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")  # a model's, a dataclass's


def _describe(loc: tuple[str, ...], errors: list[dict], model: type[BaseModel]) -> str:
    first = errors[0]
    kind = first["type"]
    if kind in _UNKNOWN_KEY:
        parent, key = list(loc[:-1]), loc[-1]
        known = _field_names(model, parent)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = ".".join(p[:ECHO_CHARS] for p in parent) or "top level"
        return f"{where}: unknown key {short(first['loc'][-1])}{hint}; allowed: " \
               f"{', '.join(known)}"
    where = ".".join(p[:ECHO_CHARS] for p in loc) or "top level"
    if kind in ("missing", "missing_argument"):
        return f"{where}: missing required key"
    if kind in ("model_type", "dataclass_type"):
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
    "LinkSpec": "a link: rate_mbps, a preset (see 'orbitfl list links') or a DVB-S2 budget "
                  "(band, eirp_dbw, gt_dbk, bandwidth_mhz)",
    "Site": "a ground station: a catalog id (see 'orbitfl list stations') or an inline site "
            "with id, lat_deg and lon_deg",
    "WalkerSpec": "a Walker shell: a preset (see 'orbitfl list walker') or planes, "
                    "per_plane, altitude_km and inclination_deg",
}


def _expected_mapping(class_name: str) -> str:
    """'Input should be a valid dictionary or instance of LinkSpec', in the project's words:
    what the section is, and how it may be written."""
    if class_name in _SECTION_WORDS:
        return f"expected {_SECTION_WORDS[class_name]}"
    return "expected a mapping of keys (a section), not a single value"


def _field_names(model: type, loc: list[str]) -> list[str]:
    """Field names of the section at ``loc`` (list indices skipped)."""
    current: type | None = model
    for part in loc:
        if part.isdigit():
            continue
        field = section_fields(current).get(part)
        current = section_model(field.annotation) if field is not None else None
        if current is None:
            return []
    return list(section_fields(current))
