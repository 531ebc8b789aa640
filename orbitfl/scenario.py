"""The scenario file: a typed, frozen schema and a loader whose errors are one line.

Every error names the file, the YAML path (``fl.schedule.deadline``) and the problem.
Paths inside a scenario resolve relative to the scenario file.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
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

from orbitfl.constellation.faults import FaultSpec
from orbitfl.constellation.ground_link import Backhaul
from orbitfl.constellation.isl import IslModel
from orbitfl.constellation.links import LinkSpec
from orbitfl.constellation.power import PowerSpec
from orbitfl.constellation.walker import WalkerSpec
from orbitfl.errors import InputError, read_user_file, short
from orbitfl.fl.config import (
    CompressionConfig,
    DataSpec,
    Execution,
    FedBuffConfig,
    FedProxConfig,
    SafeConfig,
    TrainConfig,
)
from orbitfl.limits import (
    ECHO_CHARS,
    MAX_ROUNDS,
    MAX_SATELLITES,
    MAX_SCENARIO_BYTES,
)
from orbitfl.options import Duration, format_duration, parse_duration  # noqa: F401
from orbitfl.scenario_yaml import load_yaml


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
    either may override the mask and the antenna count."""

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

    network: list[str] = Field(
        default_factory=list, description="network preset(s) (see 'orbitfl list networks')")
    sites: list[Site] = Field(
        default_factory=list, description="catalog ids or inline sites, in addition to the "
                                          "networks")
    min_elevation_deg: float | None = Field(
        None, ge=0, lt=90, description="elevation mask for every site without its own [deg]")
    antennas: int | None = Field(
        None, gt=0, le=1000, description="antennas (simultaneous passes) for every site without "
                                         "its own")
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


class ModelConfig(_Strict):
    name: Literal["small-cnn", "resnet18", "seg-unet"] = Field(
        "small-cnn", description="model architecture (seg-unet exactly when data.task is "
                                 "segmentation)")


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
        None, gt=0, le=1, description="stop at the first evaluated round whose accuracy (pixel "
                                      "accuracy for segmentation) reaches this; the run records "
                                      "when it did")
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

    strategy: Literal["fedavg", "fedprox", "fedbuff", "safe", "fedla"] = Field(
        "fedavg", description="federated strategy (fedbuff runs with schedule.mode async; fedla: "
                                     "FedAvg with each client's logit-adjusted loss)")
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

    @model_validator(mode="after")
    def _mode_fits_strategy(self) -> "FederatedConfig":
        if (self.strategy == "fedbuff") != (self.schedule.mode == "async"):
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
        if (self.data.task == "segmentation") != (self.model.name == "seg-unet"):
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
        path, so a moved copy hashes the same and an edited element file does not; the
        execution section is left out (a run started serially may resume on a pool)."""
        document = self.model_dump(mode="json")
        del document["execution"]  # where clients train does not change the results
        for path, neutral in ADDED_LATER:  # at these values, older runs keep their hash
            *parents, key = path
            section = document
            for name in parents:
                section = section.get(name) or {}
            if key in section and section[key] == neutral:
                del section[key]
        document["constellation"]["tle_sha256"] = self.tle_sha256()
        del document["constellation"]["tle"]
        blob = json.dumps(document, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def tle_sha256(self) -> str | None:
        """The element file's SHA-256; None for a Walker shell, which has no file (its
        parameters are part of the scenario itself)."""
        tle = self.constellation.tle
        return None if tle is None else file_sha256(tle)


# Options added (or given a new default) after runs were published, as (YAML path, value):
# left out of the content hash while they hold that value, so they change a scenario's hash
# only when set, and run directories, checkpoints and sweeps that do not set them stay valid
# from then on. ACE's gate default and FAU's absolute divergence (issue 23) changed what
# every SAFE run computes; their hash changed once, with them.
ADDED_LATER: tuple[tuple[tuple[str, ...], object], ...] = (
    (("ground_stations", "limit"), None),
    (("data", "validation_per_class"), None),
    (("data", "object_fraction"), None),
    (("fl", "schedule", "personalised"), "every"),
    (("fl", "schedule", "fine_tune"), False),
    (("fl", "safe", "ace_mode"), "gate"),
    (("fl", "safe", "ace_client_contexts"), True),
    (("fl", "safe", "fau_divergence"), "absolute"),
    (("fl", "safe", "fau_divergence_ref"), 0.1),
)


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
    from orbitfl.overrides import apply_overrides

    if not isinstance(document, dict):
        raise InputError(f"{origin}: expected a mapping of scenario keys at the top level")
    document = apply_overrides(document, overrides, origin)
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


def annotation_options(annotation: Any) -> tuple:
    """The members of ``X | Y | None`` (or ``(X,)``)."""
    args = typing.get_args(annotation)
    return args if args and not is_list(annotation) else (annotation,)


def is_list(annotation: Any) -> bool:
    """A list in YAML: ``list[X]``, or ``tuple[X, ...]`` in a layer's frozen config."""
    return typing.get_origin(annotation) in (list, tuple)


def is_section(value: Any) -> bool:
    """A section of the schema: one of its models, or a layer's config dataclass."""
    return isinstance(value, type) and (issubclass(value, BaseModel)
                                        or dataclasses.is_dataclass(value))


def section_model(annotation: Any) -> type | None:
    """The section a field holds: its model or dataclass, or its list items' (None for a
    value)."""
    for option in annotation_options(annotation):
        if is_list(option):
            option = typing.get_args(option)[0]
        if is_section(option):
            return option
    return None


@functools.cache
def section_fields(section: type) -> dict[str, FieldInfo]:
    """The fields of a section as pydantic reads them (bounds, description, default), for a
    model and for a layer's config dataclass alike (``orbitfl/options.py``)."""
    if issubclass(section, BaseModel):
        return dict(section.model_fields)
    hints = typing.get_type_hints(section, include_extras=True)
    return {f.name: FieldInfo.from_annotated_attribute(hints[f.name], f)
            for f in dataclasses.fields(section)}
