"""The run directory's tables, built from the simulation's records."""

from __future__ import annotations

from dataclasses import asdict, fields

import pandas as pd

from orbitfl.constellation.airtime import TransferRecord
from orbitfl.constellation.ground_link import GroundLinks
from orbitfl.constellation.network import GROUND, RelayNetwork
from orbitfl.constellation.onboard import Onboard
from orbitfl.engine.mission import ClientRound, RoundRecord
from orbitfl.fl.datasets import FederatedData


def transfers(network: RelayNetwork, failed: set[str]) -> pd.DataFrame:
    """One row per transfer (per hop for relayed payloads), with the byte accounting:
    ``air_bytes = delivered_bytes + lost_bytes + in_flight_bytes``. A partial transfer of
    a failed satellite (``failed``) is lost; any other partial one is still in flight."""
    rows = []
    ground = getattr(network, "ground", None)  # an ideal network has no links
    for t in network.records:
        delivered = t.status == "delivered"
        dead = t.src in failed or t.dst in failed
        partial = 0.0 if delivered else t.progress_bytes
        rows.append({
            "transfer_id": t.transfer_id, "kind": t.kind, "bytes": t.nbytes, "src": t.src,
            "dst": t.dst, "requested_s": t.requested_s, "start_s": t.start_s,
            "end_s": t.end_s, "passes_used": t.passes_used, "bytes_per_pass": t.bytes_per_pass,
            "via": [seg.station for seg in t.segments],
            "antenna_per_pass": [seg.antenna for seg in t.segments],
            "band_per_pass": [seg.band for seg in t.segments], **_link_states(t, ground),
            "status": t.status,
            "air_bytes": t.air_bytes, "retransmitted_bytes": t.retransmitted_bytes,
            "delivered_bytes": t.nbytes if delivered else 0,
            "lost_bytes": t.retransmitted_bytes + (partial if dead else 0.0),
            "in_flight_bytes": 0.0 if dead else partial,
            "raw_bytes": t.tag.get("raw_bytes", t.nbytes),
            "round": t.tag.get("round"), "client": t.tag.get("client"), "job": t.tag.get("job"),
            "hop": t.tag.get("hop"), "route": t.tag.get("route"), "late": t.tag.get("late"),
        })
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def _link_states(record: TransferRecord, ground: GroundLinks | None) -> dict[str, list]:
    """Per pass of a ground transfer: the atmospheric loss, Es/N0 and MODCOD it was sent
    with (``RateProfiles.state_over``); NaN, NaN, '' on ISL hops and fixed-rate links."""
    states = [(float("nan"), float("nan"), "")] * len(record.segments)
    if ground is not None and GROUND in (record.src, record.dst):
        profile = ground.profiles["up" if record.src == GROUND else "down"]
        states = [profile.state_over(s.window, s.start_s, s.end_s) for s in record.segments]
    return {"atmosphere_db_per_pass": [s[0] for s in states],
            "es_n0_db_per_pass": [s[1] for s in states],
            "modcod_per_pass": [s[2] for s in states]}


TRANSFER_COLUMNS = (  # named, so that a run without transfers still has a typed table
    "transfer_id", "kind", "bytes", "src", "dst", "requested_s", "start_s", "end_s",
    "passes_used", "bytes_per_pass", "via", "antenna_per_pass", "band_per_pass",
    "atmosphere_db_per_pass", "es_n0_db_per_pass", "modcod_per_pass", "status",
    "air_bytes", "retransmitted_bytes", "delivered_bytes", "lost_bytes", "in_flight_bytes",
    "raw_bytes", "round", "client", "job", "hop", "route", "late")


def rounds(records: list[RoundRecord], transfers: pd.DataFrame) -> pd.DataFrame:
    """One row per round, with cumulative delivered bytes by payload kind and direction,
    on the wire and raw (before compression). Relayed payloads count once, on their
    ground hop."""
    frame = pd.DataFrame([asdict(r) for r in records]).rename(columns={"closed_s": "sim_time_s"})
    ground = transfers[(transfers.status == "delivered") &
                       ((transfers.src == GROUND) | (transfers.dst == GROUND))] \
        if len(transfers) else transfers
    for kind in sorted(ground["kind"].unique()) if len(ground) else []:
        for direction, mask in (("up", ground.src == GROUND), ("down", ground.dst == GROUND)):
            mine = ground[(ground.kind == kind) & mask]
            for column, source in (("bytes", "bytes"), ("raw_bytes", "raw_bytes")):
                frame[f"{column}_{direction}_{kind}"] = [
                    int(mine.loc[mine.end_s <= t, source].sum()) for t in frame.sim_time_s]
    return frame


def client_rounds(entries: list[ClientRound]) -> pd.DataFrame:
    # simpy's clock starts at the integer 0: a one-round run's start times were all ints
    return pd.DataFrame([asdict(e) for e in entries],
                        columns=[f.name for f in fields(ClientRound)]).astype(
                            {"selected_s": float})


def partition(data: FederatedData, satellites: list[str]) -> pd.DataFrame:
    """Each satellite's training-set class histogram."""
    histogram = pd.DataFrame(data.client_histograms(), columns=[
        f"class_{c}" for c in range(data.classes)])
    return histogram.assign(satellite=satellites)[["satellite", *histogram.columns]]


def power(onboard: Onboard) -> pd.DataFrame:
    """Battery state of charge of every satellite at every change of slope (load, sunlight,
    empty, full), with the cumulative energy books: at every row, supplied = initial +
    harvested - stored - wasted."""
    rows = [{"satellite": name, **sample._asdict()}
            for name, battery in zip(onboard.names, onboard.batteries)
            for sample in battery.trace]
    return pd.DataFrame(rows)


SAFE_DIAGNOSTIC_COLUMNS = ("round", "client", "quantity", "index", "value")


def safe_diagnostics(rows: list[dict]) -> pd.DataFrame:
    """SAFE's evaluation log (``Safe.evaluation_log``) as a typed table; client and class
    index are integers or null (NaN in a float column, as elsewhere in the run)."""
    frame = pd.DataFrame(rows, columns=SAFE_DIAGNOSTIC_COLUMNS)
    return frame.astype({"round": "int64", "client": "float64", "quantity": "str",
                         "index": "float64", "value": "float64"})
