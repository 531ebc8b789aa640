"""The metrics derived from a run (``run_model.Run``): bytes by kind, pass utilisation,
energy per satellite, where each round's time went. The matplotlib figures (``report.py``)
and the plotly dashboard (``dashboard.py``) are views of these numbers, and each is worked
out once per run (``derived``).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pandas as pd

from .run_model import Run


def derived(run: Run, name: str, tables: tuple[str, ...], compute):
    """``compute(run)``, worked out once for the run's current ``tables`` (the static
    figures and the dashboard both need it; at constellation scale it is not cheap) and
    again only when one of those tables is replaced by another object."""
    inputs = tuple(getattr(run, table) for table in tables)
    known = run._derived.get(name)
    if known is None or any(a is not b for a, b in zip(known[0], inputs)):
        known = run._derived[name] = (inputs, compute(run))
    return known[1]


def bytes_by_kind(run: Run) -> pd.DataFrame:
    """Delivered wire bytes per payload kind and direction (ground hops only)."""
    t = run.transfers
    ground = t[(t["status"] == "delivered") & ((t["src"] == "ground") | (t["dst"] == "ground"))] \
        if len(t) else t
    if ground.empty:  # (an empty table may even lack its columns)
        return pd.DataFrame(columns=["down", "up"], dtype="int64")
    direction = np.where(ground["src"] == "ground", "up", "down")
    return ground.assign(direction=direction).groupby(["kind", "direction"])["bytes"].sum() \
        .unstack(fill_value=0).reindex(columns=["down", "up"], fill_value=0)


def pass_utilisation(run: Run) -> pd.DataFrame:
    """Per contact window and direction: its capacity (contacts.parquet) and the wire bytes
    moved in it (each transfer's ``bytes_per_pass``, matched in order to the windows of its
    satellite at the stations in ``via`` that overlap the transfer), and the share of the
    window's time those bytes take at its mean rate. Computed once per run and tables (the
    static figure and the dashboard share it): treat the frame as read-only."""
    return derived(run, "pass_utilisation", ("contacts", "transfers"), _pass_utilisation)


def _pass_utilisation(run: Run) -> pd.DataFrame:
    c = run.contacts
    if not len(c) or "downlink_bytes" not in c:
        return pd.DataFrame(columns=["satellite", "station", "start_s", "direction",
                                     "capacity", "moved", "time_share"])
    moved = {"down": np.zeros(len(c)), "up": np.zeros(len(c))}
    windows = _windows_by_pair(c)
    t = run.transfers
    ground = t[(t["src"] == "ground") | (t["dst"] == "ground")] if len(t) else t
    columns = ("src", "dst", "start_s", "end_s", "via", "bytes_per_pass")
    for src, dst, start, end, via, per_pass in zip(*(
            ground[k].tolist() if len(ground) else [] for k in columns)):
        up = src == "ground"
        satellite = dst if up else src
        if per_pass is None or start != start:  # (a NaN start overlaps no window)
            continue
        end = end if end == end else np.inf
        into, after = moved["up" if up else "down"], -np.inf
        for station, nbytes in zip(via, per_pass):
            hit = _first_window(windows.get((satellite, station)), start, end, after)
            if hit is not None:
                into[hit[0]] += float(nbytes)
                after = hit[1]
    rows = []
    for direction, column in (("down", "downlink_bytes"), ("up", "uplink_bytes")):
        frame = c[["satellite", "station", "start_s"]].assign(
            direction=direction, capacity=c[column].astype(float), moved=moved[direction])
        rows.append(frame)
    table = pd.concat(rows, ignore_index=True)
    return table.assign(time_share=(table["moved"] / table["capacity"].where(
        table["capacity"] > 0)).clip(upper=1.0))


def _windows_by_pair(c: pd.DataFrame) -> dict[tuple, tuple[list, list, list, list]]:
    """Each (satellite, station)'s contact windows in start order (ties in table order):
    their starts, ends, the running maximum of the ends, and their row positions."""
    starts, ends = c["start_s"].to_numpy(float), c["end_s"].to_numpy(float)
    usable = ~(np.isnan(starts) | np.isnan(ends))  # (a NaN bound overlaps nothing)
    kept = np.flatnonzero(usable)
    pairs = {}
    for key, rows in c.iloc[kept].groupby(["satellite", "station"], sort=False).indices.items():
        rows = kept[rows]
        rows = rows[np.argsort(starts[rows], kind="stable")]
        pairs[key] = (starts[rows].tolist(), ends[rows].tolist(),
                      np.maximum.accumulate(ends[rows]).tolist(), rows.tolist())
    return pairs


def _first_window(pair, start: float, end: float, after: float) -> tuple[int, float] | None:
    """(row, start) of the first of a pair's windows, in start order, that begins after
    ``after`` and overlaps (``start``, ``end``), or None."""
    if pair is None:
        return None
    starts, ends, reach, rows = pair
    # windows before the first whose running end passes ``start`` all end by ``start``
    k = max(bisect_right(starts, after), bisect_right(reach, start))
    while k < len(starts) and starts[k] < end:
        if ends[k] > start:
            return rows[k], starts[k]
        k += 1
    return None


def worst_satellites(runs: list[Run], limit: int) -> list[str]:
    """Satellites ordered worst-off first (lowest state of charge in any run), at most
    ``limit``."""
    lowest = [derived(r, "lowest_soc", ("power",), _lowest_soc) for r in runs
              if r.power is not None and len(r.power)]
    if not lowest:
        return []
    lowest = pd.concat(lowest).groupby(level=0).min().sort_values(kind="stable")
    return list(lowest.index[:limit])


def _lowest_soc(run: Run) -> pd.Series:
    """Each satellite's lowest state of charge in the run (by satellite name)."""
    power = run.power
    assert power is not None  # worst_satellites asks only for runs that have the table
    return power.groupby("satellite")["soc"].min()


def energy_per_satellite(run: Run) -> pd.DataFrame:
    """Each satellite's energy books at its last sample: training and radios (mission),
    the rest of the bus, solar wasted by a full battery and demand left unserved (kJ).
    Worked out once per run (figure and dashboard): treat the frame as read-only."""
    return derived(run, "energy_per_satellite", ("power",), _energy_per_satellite)


def _energy_per_satellite(run: Run) -> pd.DataFrame:
    if run.power is None or not len(run.power) or "supplied_j" not in run.power:
        return pd.DataFrame(columns=["mission", "bus", "wasted", "unserved"])
    last = run.power.sort_values("t_s", kind="stable").groupby("satellite").last()
    return pd.DataFrame({"mission": last["mission_j"],
                         "bus": last["supplied_j"] - last["mission_j"],
                         "wasted": last["wasted_j"], "unserved": last["unserved_j"]}) / 1e3


def _measure(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of intervals."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _on_air(run: Run, transfers: pd.DataFrame, satellite: str, lo: float,
            hi: float) -> float:
    """Seconds within [lo, hi] in which one of ``transfers`` was on the air: each transfer
    from its first byte to its last, counted only inside its satellite's contact windows
    with the stations it used (between two passes it waits, it does not send)."""
    c = run.contacts
    windows = c[c["satellite"] == satellite] if len(c) else c
    spans = []
    for _, t in transfers.iterrows():
        if pd.isna(t["start_s"]) or pd.isna(t["end_s"]):
            continue
        start, end = max(t["start_s"], lo), min(t["end_s"], hi)
        mine = windows[windows["station"].isin(list(t["via"]))] if len(windows) else windows
        spans += [(max(start, w0), min(end, w1)) for w0, w1 in
                  zip(mine.get("start_s", []), mine.get("end_s", [])) if w0 < end and w1 > start]
    return _measure(spans)


FACTORS = ("waiting for a contact", "transfer", "battery", "training", "no update in time")


def round_breakdown(run: Run) -> pd.DataFrame:
    """Where each round's simulated time went (seconds, columns ``FACTORS``), along the
    update that closed it: the last aggregated update delivered by the round's close. Its
    job's uplink and downlink split into time on the air (``transfer``) and the rest
    (``waiting for a contact``); between the payload's arrival and the update's queueing,
    the onboard compute time is ``training`` and the rest is ``battery`` (training waits
    for charge). A round that no update closed is all ``no update in time``. Runs without
    clients.parquet or job ids give an empty table. Worked out once per run (figure and
    dashboard): treat the frame as read-only."""
    return derived(run, "round_breakdown", ("clients", "transfers", "rounds", "contacts"),
                   _round_breakdown)


def _round_breakdown(run: Run) -> pd.DataFrame:
    empty = pd.DataFrame(columns=FACTORS, dtype=float)
    c, t = run.clients, run.transfers
    if c is None or not len(c) or "job" not in t or "opened_s" not in run.rounds:
        return empty
    done = c[c["aggregated"] & c["update_delivered_s"].notna()]
    rows = {}
    for _, r in run.rounds[run.rounds["round"] > 0].iterrows():
        lo, hi = float(r["opened_s"]), float(r["sim_time_s"])
        row = dict.fromkeys(FACTORS, 0.0)
        closing = done[(done["update_delivered_s"] <= hi + 1e-6) &
                       (done["update_delivered_s"] > lo)]
        if not len(closing):
            row["no update in time"] = hi - lo
            rows[int(r["round"])] = row
            continue
        job = closing.loc[closing["update_delivered_s"].idxmax()]
        mine = t[t["job"] == job["job"]]
        up, down = mine[mine["src"] == "ground"], mine[mine["dst"] == "ground"]
        received = float(job["payload_received_s"])
        queued = float(down["requested_s"].min()) if len(down) else received
        row["training"] = min(float(job["training_s"] or 0.0), max(0.0, queued - received))
        row["battery"] = max(0.0, queued - received - row["training"])
        row["transfer"] = _on_air(run, up, job["satellite"], lo, received) + \
            _on_air(run, down, job["satellite"], queued, hi)
        row["waiting for a contact"] = max(0.0, hi - lo - sum(row.values()))
        rows[int(r["round"])] = row
    if not rows:
        return empty
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(FACTORS))
    return table.where(table > 1e-6, 0.0)  # float dust from the subtractions
