"""``orbitfl list``: every name a scenario may use, and what it means, as a table.

Read from the catalogs themselves (stations CSV, networks, link presets, chips, Walker
presets) and from the scenario schema's choices, so the list cannot drift from what
validation accepts. Cheap: nothing here imports torch, and the catalogs load only when listed.
"""

from __future__ import annotations

import csv
import typing
from importlib.resources import files
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from orbitfl.constellation.links import LinkBudget

Table = tuple[list[str], list[list[str]]]

LINK_MEANINGS = {
    "dove-x": "Planet Dove X-band downlink, DVB-S2 ACM (Devaraj et al., SmallSat 2017)",
    "dove-s": "Planet Dove S-band uplink, 250 kbit/s BPSK (Klofas 2016)",
    "s-band-ttc": "S-band TT&C class link (docs/architecture.md, reference figures)",
    "uhf": "UHF amateur-class link, for bandwidth studies",
    "ka-eess": "Ka-band Earth-exploration downlink at 26.5 GHz (ITU RR EESS allocation); "
               "EIRP, G/T and bandwidth assumed",
}
CODEC_MEANINGS = {
    "fp32": "32-bit floats, lossless (4 bytes per value)",
    "fp16": "16-bit floats (2 bytes per value)",
    "int8": "8-bit symmetric quantisation, one 4-byte scale per tensor",
    "int8-channel": "8-bit quantisation, one 4-byte scale per output channel",
    "topk": "top-k sparsification with error feedback (to_ground only; fl.compression.topk_ratio)",
}


def stations() -> Table:
    """The packaged catalog: coordinates, default mask, antennas (count, bands, G/T, EIRP,
    each with its source or 'assumed'), operator and source."""
    from orbitfl.constellation.stations import antenna_catalog, catalog

    text = files("orbitfl.constellation").joinpath("data/ground_stations.csv").read_text("utf-8")
    rows = {row["id"]: row for row in csv.DictReader(text.splitlines())}
    antennas = antenna_catalog()
    return (["id", "lat_deg", "lon_deg", "alt_m", "mask_deg", "antennas", "bands", "gt_dbk",
             "eirp_dbw", "operator", "name", "source", "antennas_source", "bands_source"],
            [[s.id, f"{s.lat_deg:.4f}", f"{s.lon_deg:.4f}", f"{s.alt_m:g}",
              f"{s.min_elevation_deg:g}", str(s.antennas), "/".join(s.bands) or "-",
              _or_dash(s.gt_dbk), _or_dash(s.eirp_dbw), rows[s.id]["operator"], s.name,
              rows[s.id]["source"], antennas[s.id]["antennas_source"],
              antennas[s.id]["bands_source"]] for s in catalog().values()])


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def networks() -> Table:
    from orbitfl.constellation.stations import NETWORKS

    return ["network", "members"], [[name, ", ".join(ids)] for name, ids in NETWORKS.items()]


def links() -> Table:
    from orbitfl.constellation.links import LINK_PRESETS, FixedRate

    rows = []
    for name, model in LINK_PRESETS.items():
        if isinstance(model, FixedRate):
            rate, kind = f"{model.bps / 1e6:g} Mbit/s", "fixed rate"
        else:
            rate, kind = f"{peak_bps(model) / 1e6:.0f} Mbit/s peak", \
                f"DVB-S2 {model.frequency_ghz:g} GHz, {model.bandwidth_mhz:g} MHz, up to " \
                f"{model.max_modulation}"
        rows.append([name, model.band or "-", rate, kind, LINK_MEANINGS.get(name, "")])
    return ["preset", "band", "rate", "model", "meaning"], rows


def peak_bps(budget: "LinkBudget") -> float:
    """The best MODCOD's rate: what the link gives when the budget closes at every MODCOD."""
    return max(m[2] for m in budget.modcods()) * budget.symbol_rate


def chips() -> Table:
    from orbitfl.constellation.compute import CHIPS

    return (["chip", "peak_flops", "utilisation", "watts", "source"],
            [[name, f"{c.peak_flops:.3g}", f"{c.utilisation:g}", f"{c.power_w:g}", c.source]
             for name, c in CHIPS.items()])


def walker() -> Table:
    from orbitfl.constellation.walker import PRESETS

    return (["preset", "planes", "per_plane", "satellites", "phasing", "altitude_km",
             "inclination_deg", "pattern"],
            [[name, str(s.planes), str(s.per_plane), str(s.size), str(s.phasing),
              f"{s.altitude_km:g}", f"{s.inclination_deg:g}", s.pattern]
             for name, s in PRESETS.items()])


def choices(model: type, field: str) -> list[str]:
    """The names a ``Literal`` field of the scenario schema accepts."""
    from orbitfl.scenario.schema_fields import section_fields

    return [str(c) for c in typing.get_args(section_fields(model)[field].annotation)]


def _meanings(names: list[str], meanings: dict[str, str], column: str) -> Table:
    return [column, "meaning"], [[n, meanings.get(n, "")] for n in names]


def _registered(kind: str) -> Table:
    """A kind of extension point: built-in names, then installed plugins, then what orbitfl
    ships to be named by reference (the Flower adapter), with where each comes from
    (``fl/registry.py``)."""
    from orbitfl.fl.registry import listed

    return [kind, "origin", "meaning"], [[e.name, e.origin, e.meaning or (e.target or "")]
                                         for e in listed(kind)]


def datasets() -> Table:
    return _registered("dataset")


def models() -> Table:
    return _registered("model")


def strategies() -> Table:
    return _registered("strategy")


def codecs() -> Table:
    from orbitfl.scenario.model import CompressionConfig

    return _meanings(choices(CompressionConfig, "to_ground"), CODEC_MEANINGS, "codec")


CATALOGS: dict[str, Callable[[], Table]] = {
    "stations": stations, "networks": networks, "links": links, "chips": chips,
    "walker": walker, "datasets": datasets, "models": models, "strategies": strategies,
    "codecs": codecs,
}


def format_table(table: Table) -> str:
    """Plain aligned columns (the last one left ragged: sources are long)."""
    header, rows = table
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip()
                     for r in [header, *rows])
