"""The learning layer's extension points by name: strategies, models and datasets.

Names are declared once, here: the built-in ones below, and those installed packages
register under the entry-point groups ``orbitfl.strategies``, ``orbitfl.models`` and
``orbitfl.datasets``. A scenario may also name any importable object by reference,
``"package.module:Name"``. The scenario schema, ``orbitfl list``, validation and the run
all read this module. Importing it imports no torch: entries are loaded (imported) only
when a run, or ``orbitfl validate``, needs them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["strategy", "model", "dataset"]
GROUPS: dict[str, str] = {"strategy": "orbitfl.strategies", "model": "orbitfl.models",
                          "dataset": "orbitfl.datasets"}
BUILT_IN = "built-in"
REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class PluginError(ValueError):
    """An extension that cannot be used: one line saying which and why."""


@dataclass(frozen=True)
class Entry:
    """One name a scenario may use. ``target``: the ``module:attribute`` it loads (None for
    the built-in models and datasets, which orbitfl's own builders make); ``origin``:
    built-in, or where it came from (an entry point's distribution, or a reference)."""

    kind: str
    name: str
    target: str | None
    origin: str = BUILT_IN
    meaning: str = ""
    asynchronous: bool = False  # strategies: runs with schedule.mode async
    version: str | None = None  # a distribution's version, when known without importing

    @property
    def built_in(self) -> bool:
        return self.origin == BUILT_IN


def _strategy(name: str, target: str, meaning: str, asynchronous: bool = False) -> Entry:
    return Entry("strategy", name, f"orbitfl.fl.{target}", BUILT_IN, meaning, asynchronous)


BUILT_INS: dict[str, dict[str, Entry]] = {
    "strategy": {e.name: e for e in (
        _strategy("fedavg", "fedavg:FedAvg",
                  "FedAvg: sample-weighted average of client models (sync)"),
        _strategy("fedprox", "fedavg:FedProx",
                  "FedProx: FedAvg with a proximal term fl.fedprox.mu (sync)"),
        _strategy("fedbuff", "fedbuff:FedBuff",
                  "FedBuff: buffered asynchronous aggregation (schedule.mode: async)", True),
        _strategy("safe", "safe:Safe",
                  "SAFE: CRO, FAU, DMR and ACE for imbalanced data (docs/safe-method.md)"),
        _strategy("fedla", "logit_adjust:FedLA",
                  "FedLA: FedAvg, each client training with the logit-adjusted loss of its "
                  "own class prior (Menon et al., 2021; balanced softmax)"),
    )},
    "model": {name: Entry("model", name, None, BUILT_IN, meaning) for name, meaning in (
        ("small-cnn", "three conv blocks (~95 k parameters), sized for CPU training"),
        ("tiny-cnn", "the small CNN at width 16 (~24 k parameters): many runs on few cores"),
        ("resnet18", "ResNet-18 (He et al., 2016) with a 3x3 stem for small tiles (~11 M "
                     "parameters)"),
        ("seg-unet", "U-Net style segmentation model (data.task: segmentation)"),
    )},
    "dataset": {name: Entry("dataset", name, None, BUILT_IN, meaning) for name, meaning in (
        ("geo-synthetic", "each satellite images its own sunlit ground track over MODIS land "
                          "cover"),
        ("geo-synthetic-objects", "synthetic: ten drawn object classes (ships, aircraft, "
                                  "tanks, ...) covering data.object_fraction of tiles over "
                                  "MODIS land cover under the ground tracks; long-tailed"),
        ("synthetic", "seeded class-conditional textures, data.classes classes; nothing on "
                      "disk"),
        ("patternnet", "PatternNet folder on your disk (data.path), 38 scene classes"),
        ("nwpu-resisc45", "NWPU-RESISC45 folder on your disk (data.path), 45 scene classes"),
        ("eurosat", "EuroSAT RGB folder on your disk (data.path), 10 land-use classes"),
        ("ucmerced", "UC Merced Land Use folder on your disk (data.path), 21 classes"),
        ("loveda", "LoveDA folder on your disk (data.path); segmentation, 7 classes"),
        ("folder", "any class-per-folder image set on your disk (data.path): one folder of "
                   "images per class, classes in folder-name order"),
    )},
}


# Classes orbitfl ships that a scenario names by reference with their options
# (``fl.strategy: {class: ..., options: {...}}``), not by a name: listed after the names.
SHIPPED: dict[str, tuple[Entry, ...]] = {"strategy": (Entry(
    "strategy", "orbitfl.fl.flower_adapter:FlowerStrategy",
    "orbitfl.fl.flower_adapter:FlowerStrategy", "shipped, by reference (orbitfl[flower])",
    "Flower: an unmodified Flower strategy and client in the mission (options: strategy, "
    "client_app, strategy_options, run_config; docs/extending.md)"),), "model": (),
    "dataset": ()}


@functools.cache
def installed(kind: str) -> dict[str, Entry]:
    """The entries installed packages register under ``GROUPS[kind]`` (a built-in name
    cannot be taken over: the built-in wins)."""
    found = {}
    for point in importlib.metadata.entry_points(group=GROUPS[kind]):
        if point.name in BUILT_INS[kind]:
            continue
        dist = getattr(point, "dist", None)
        where = f"entry point of {dist.name} {dist.version}" if dist is not None \
            else "entry point"
        found[point.name] = Entry(kind, point.name, point.value, where,
                                  version=dist.version if dist is not None else None)
    return found


def entries(kind: str) -> dict[str, Entry]:
    """Every name of ``kind`` a scenario may use: built-in first, then installed."""
    return {**BUILT_INS[kind], **installed(kind)}


def listed(kind: str) -> list[Entry]:
    """What ``orbitfl list`` shows: every name, then the classes orbitfl ships that a
    scenario names by reference (the Flower adapter)."""
    return [*entries(kind).values(), *SHIPPED[kind]]


def names(kind: str) -> list[str]:
    return list(entries(kind))


def entry(kind: str, name: str) -> Entry:
    """The entry a scenario's name stands for; ``PluginError`` names the known ones."""
    known = entries(kind)
    if name not in known:
        raise PluginError(f"unknown {kind} {name!r}; known: {', '.join(known)} (or a "
                          "reference, 'package.module:Name')")
    return known[name]


def reference(kind: str, target: str) -> Entry:
    """The entry of a ``package.module:Name`` reference (checked for form only)."""
    if not REFERENCE.match(target):
        raise PluginError(f"{target!r} is not a reference of the form 'package.module:Name'")
    return Entry(kind, target, target, "reference")


def load(item: Entry) -> Any:
    """Import what ``item`` names; a missing module or attribute is one ``PluginError``."""
    if item.target is None:
        raise PluginError(f"the built-in {item.kind} {item.name!r} is built by orbitfl")
    module_name, _, attribute = item.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any failure of a plugin's import is its own
        raise PluginError(f"{item.kind} {item.name!r}: cannot import module {module_name!r}: "
                          f"{type(err).__name__}: {_first_line(err)}") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{item.kind} {item.name!r}: module {module_name!r} has no "
                              f"attribute {attribute!r}")
        obj = getattr(obj, part)
    return obj


def version(item: Entry) -> str | None:
    """What identifies the plugin's code in a scenario's hash: its distribution's version
    (``name==version``), else the SHA-256 of its module's source file (a loose module has
    no version: an edit to it must not let a run resume on other code); None for built-ins,
    which orbitfl's own version covers."""
    if item.built_in:
        return None
    if item.version is not None:
        return item.version
    module_name = (item.target or "").partition(":")[0]
    top = module_name.split(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    if dists:
        return f"{dists[0]}=={importlib.metadata.version(dists[0])}"
    try:
        spec = importlib.util.find_spec(module_name)
    except Exception:  # noqa: BLE001 - a parent package that fails to import
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return "unknown"
    return "sha256:" + hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"
