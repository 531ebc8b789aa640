"""Link budgets: slant range -> free-space loss -> Es/N0 -> the best DVB-S2 MODCOD (ACM).

``Es/N0 = EIRP + G/T - FSPL - L_atm(elevation) - L_other + 228.6 - 10 log10(Rs)`` (dB), with
``FSPL = 20 log10(4 pi d f / c)`` and ``Rs`` the symbol rate ``B / (1 + roll-off)``. Adaptive
coding and modulation picks the highest-efficiency MODCOD whose threshold (plus a margin)
is met; the information rate is ``Rs x efficiency``. Along a pass the rate is piecewise
constant on a sampling grid, taking on each interval the lower of its end rates (ACM only
steps up once the better threshold is met), and a window's capacity is the integral.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable, Literal, Sequence, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from orbitfl.core.errors import short
from orbitfl.core.options import STRICT, option

from .constants import SPEED_OF_LIGHT_M_S
from .contacts import ContactPlan
from .propagation import Propagator
from .rate_model import RateModel
from .stations import GroundStation

BOLTZMANN_DB = -228.6  # 10 log10(k), dBW/K/Hz

# ETSI EN 302 307-1 V1.4.1, Table 13: ideal Es/N0 (dB) for quasi-error-free operation
# (PER 1e-7, AWGN, normal 64 800-bit FECFRAME) and spectral efficiency (information bits per
# symbol, no pilots).
DVB_S2_MODCODS: tuple[tuple[str, float, float], ...] = (
    ("QPSK 1/4", -2.35, 0.490243), ("QPSK 1/3", -1.24, 0.656448),
    ("QPSK 2/5", -0.30, 0.789412), ("QPSK 1/2", 1.00, 0.988858),
    ("QPSK 3/5", 2.23, 1.188304), ("QPSK 2/3", 3.10, 1.322253),
    ("QPSK 3/4", 4.03, 1.487473), ("QPSK 4/5", 4.68, 1.587196),
    ("QPSK 5/6", 5.18, 1.654663), ("QPSK 8/9", 6.20, 1.766451),
    ("QPSK 9/10", 6.42, 1.788612), ("8PSK 3/5", 5.50, 1.779991),
    ("8PSK 2/3", 6.62, 1.980636), ("8PSK 3/4", 7.91, 2.228124),
    ("8PSK 5/6", 9.35, 2.478562), ("8PSK 8/9", 10.69, 2.646012),
    ("8PSK 9/10", 10.98, 2.679207), ("16APSK 2/3", 8.97, 2.637201),
    ("16APSK 3/4", 10.21, 2.966728), ("16APSK 4/5", 11.03, 3.165623),
    ("16APSK 5/6", 11.61, 3.300184), ("16APSK 8/9", 12.89, 3.523143),
    ("16APSK 9/10", 13.13, 3.567342), ("32APSK 3/4", 12.73, 3.703295),
    ("32APSK 4/5", 13.64, 3.951571), ("32APSK 5/6", 14.28, 4.119540),
    ("32APSK 8/9", 15.69, 4.397854), ("32APSK 9/10", 16.05, 4.453027),
)

# Carrier frequencies (GHz) and clear-sky zenith attenuation (dB) per band. The attenuation
# figures are estimates for gaseous absorption at a mid-latitude site in clear air
# (ITU-R P.676 order of magnitude), not measurements; scenarios can override them.
BANDS = {
    "UHF": (0.437, 0.02),
    "S": (2.25, 0.04),
    "X": (8.2, 0.08),
    "Ka": (26.5, 0.50),
}
# Band names as space operations use them (NASA NEN, ESA ESTRACK): X takes in the 7.1-7.2
# GHz uplink, Ka the 25.5-27 GHz Earth-exploration downlink (IEEE Std 521 would call that
# K). A carrier outside these ranges has no band name here ('').
BAND_RANGES_GHZ = {"UHF": (0.3, 1.0), "S": (2.0, 4.0), "X": (7.0, 12.0), "Ka": (25.5, 40.0)}


def band_of(frequency_ghz: float) -> str:
    """The band name of a carrier frequency ('' outside ``BAND_RANGES_GHZ``)."""
    return next((name for name, (low, high) in BAND_RANGES_GHZ.items()
                 if low <= frequency_ghz < high), "")


# The atmosphere's attenuation (dB) of samples: (carrier frequency in GHz, station index,
# window rows, elevation in deg) -> dB; ``atmosphere.Weather.attenuation_db``.
Attenuation = Callable[[float, int, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FixedRate:
    """A link that runs at one rate whenever the contact exists (e.g. S-band TT&C)."""

    bps: float
    band: str = ""  # the band it runs in, where known (a preset's); '' for a bare rate

    def rate_bps(self, range_km: np.ndarray, elevation_deg: np.ndarray,
                 attenuation_db: np.ndarray | None = None) -> np.ndarray:
        return np.full(np.shape(range_km), self.bps)


@dataclass(frozen=True)
class LinkBudget:
    """A DVB-S2 ACM link. ``max_modulation`` caps the constellation (e.g. '8PSK')."""

    frequency_ghz: float
    eirp_dbw: float
    gt_dbk: float
    bandwidth_mhz: float
    rolloff: float = 0.2
    zenith_atmospheric_loss_db: float = 0.08
    other_losses_db: float = 1.0  # pointing, polarisation, demodulator implementation
    margin_db: float = 1.0        # required above the MODCOD threshold
    max_modulation: str = "32APSK"

    @property
    def band(self) -> str:
        return band_of(self.frequency_ghz)

    @property
    def symbol_rate(self) -> float:
        return self.bandwidth_mhz * 1e6 / (1.0 + self.rolloff)

    def modcods(self) -> list[tuple[str, float, float]]:
        order = ["QPSK", "8PSK", "16APSK", "32APSK"]
        allowed = order[: order.index(self.max_modulation) + 1]
        return [m for m in DVB_S2_MODCODS if m[0].split()[0] in allowed]

    def atmosphere_db(self, elevation_deg: np.ndarray) -> np.ndarray:
        """The clear-sky loss this budget assumes without weather: its zenith loss scaled
        by the path length at each elevation."""
        return atmospheric_loss_db(self.zenith_atmospheric_loss_db, elevation_deg)

    def es_n0_db(self, range_km: np.ndarray, elevation_deg: np.ndarray,
                 attenuation_db: np.ndarray | None = None) -> np.ndarray:
        """Es/N0 (dB); ``attenuation_db`` (the atmosphere from ``links.weather``) replaces
        the clear-sky loss when given."""
        if attenuation_db is None:
            attenuation_db = self.atmosphere_db(elevation_deg)
        distance_m = np.asarray(range_km, dtype=float) * 1e3
        fspl = 20.0 * np.log10(4.0 * np.pi * distance_m * self.frequency_ghz * 1e9
                               / SPEED_OF_LIGHT_M_S)
        return (self.eirp_dbw + self.gt_dbk - fspl - attenuation_db
                - self.other_losses_db - BOLTZMANN_DB - 10.0 * np.log10(self.symbol_rate))

    def select_modcod(self, es_n0_db: np.ndarray) -> np.ndarray:
        """Index into ``modcods()`` of the most efficient MODCOD that closes, or -1."""
        table = self.modcods()
        thresholds = np.array([m[1] for m in table]) + self.margin_db
        efficiency = np.array([m[2] for m in table])
        closes = np.asarray(es_n0_db)[..., None] >= thresholds
        best = np.where(closes, efficiency, -1.0)
        return np.where(closes.any(axis=-1), best.argmax(axis=-1), -1)

    def rate_bps(self, range_km: np.ndarray, elevation_deg: np.ndarray,
                 attenuation_db: np.ndarray | None = None) -> np.ndarray:
        return self.rate_of(self.select_modcod(
            self.es_n0_db(range_km, elevation_deg, attenuation_db)))

    def rate_of(self, index: np.ndarray) -> np.ndarray:
        """Information rate (bit/s) of MODCOD indices from ``select_modcod`` (-1: none)."""
        efficiency = np.array([m[2] for m in self.modcods()])
        return np.where(index >= 0, efficiency[np.maximum(index, 0)] * self.symbol_rate, 0.0)

    def modcod_names(self, index: np.ndarray) -> np.ndarray:
        """Names of MODCOD indices from ``select_modcod``; -1 is 'none'."""
        names = np.array([m[0] for m in self.modcods()] + ["none"], dtype=object)
        return names[index]


# Published systems the defaults trace to. Figures marked "estimate" are ours.
LINK_PRESETS: dict[str, FixedRate | LinkBudget] = {
    # Planet Dove X-band (Devaraj et al., "Dove High Speed Downlink System", SmallSat 2017,
    # SSC17-VII-02): "over 220 Mbps peak and 160 Mbps average", "12-15 GB during a single
    # ground station pass, which has a duration of 7 to 10 minutes", 4.5-7.6 m dishes.
    # 8.2 GHz, DVB-S2 (Klofas, "Planet Labs Ground Station Network", CubeSat Developers'
    # Workshop 2016); 75 MHz and a 16APSK cap give the 223 Mbit/s peak (16APSK 9/10 at
    # 62.5 Msym/s). G/T 28 dB/K is a 4.5 m dish (estimate). EIRP is the calibrated term:
    # 6 dBW, i.e. 2 W (Klofas 2016) into a ~5 dBi antenna (Planet's 2012 NTIA filing, FCC
    # 0100-EX-PL-2012: 5 dBi, 90 deg) less ~2 dB of line loss. The three figures fit one
    # pass only as the average over the whole pass, ACM stepping down at low elevation:
    # 160 Mbit/s x 10 min = 12 GB, so they describe a ~10 min pass, which a ~475 km Dove
    # gives when tracked from 3 deg and rising above 30 deg. Over such passes (Flock 4Y,
    # SvalSat, tests/test_presets.py) the model gives a 223 Mbit/s peak, ~165 Mbit/s
    # average and ~11.9 GB per 9.3-9.8 min pass; with a 5 deg mask ~173 Mbit/s, ~11.3 GB.
    "dove-x": LinkBudget(8.2, 6.0, 28.0, 75.0, max_modulation="16APSK"),
    # Planet Dove S-band uplink: 250 kbit/s BPSK (Klofas 2016, slide "S/X Radio"); it
    # carries everything sent to a Dove, the global model included.
    "dove-s": FixedRate(250e3, "S"),
    # S-band TT&C class uplink, ~1-2 Mbit/s (docs/architecture.md, reference figures).
    "s-band-ttc": FixedRate(2e6, "S"),
    # A UHF amateur-class link (9.6 kbit/s), for bandwidth studies.
    "uhf": FixedRate(9600.0, "UHF"),
    # A Ka-band Earth-exploration downlink: 26.5 GHz lies in the 25.5-27 GHz EESS
    # space-to-Earth allocation (ITU Radio Regulations, Article 5); EIRP 20 dBW, G/T
    # 30 dB/K and 250 MHz are assumed, not published figures (the budget of
    # scenarios/starlink-relay.yaml).
    "ka-eess": LinkBudget(26.5, 20.0, 30.0, 250.0, zenith_atmospheric_loss_db=BANDS["Ka"][1]),
}


def station_link(default: RateModel, station: GroundStation, direction: str) -> RateModel:
    """The link that serves a pass over ``station`` in ``direction`` ('down' or 'up'): the
    site's own link where the scenario gives one, else ``default``; a DVB-S2 budget then
    takes the station's G/T (downlink) or EIRP (uplink) where the station has one."""
    model = (station.downlink if direction == "down" else station.uplink) or default
    if isinstance(model, LinkBudget):
        if direction == "down" and station.gt_dbk is not None:
            model = replace(model, gt_dbk=station.gt_dbk)
        if direction == "up" and station.eirp_dbw is not None:
            model = replace(model, eirp_dbw=station.eirp_dbw)
    return model


def station_links(default: RateModel, stations: Sequence[GroundStation],
                  direction: str) -> list[RateModel]:
    """``station_link`` of every station, in their order (what ``rate_profiles`` takes)."""
    return [station_link(default, station, direction) for station in stations]


def link_band(model: RateModel) -> str:
    """The band a link runs in ('' when unknown, e.g. a bare fixed rate)."""
    return getattr(model, "band", "")


@dataclass(frozen=True)
class LinkSpec:
    """One direction of a link as a scenario writes it (``links.downlink``, ``links.uplink``,
    ``links.isl.link``): a fixed rate, a named preset, or a DVB-S2 budget (band plus EIRP,
    G/T and bandwidth; the rest defaults). It is a choice among three rate models with
    shortcuts (a band sets the frequency and the zenith loss), so it stays apart from the
    ``FixedRate`` and ``LinkBudget`` it resolves to in ``model()``."""

    __pydantic_config__ = STRICT

    rate_mbps: float | None = option(
        None, "fixed data rate during every contact [Mbit/s]", gt=0, le=1e6)
    preset: str | None = option(None, "a named link (see 'orbitfl list links')")
    band: Literal["UHF", "S", "X", "Ka"] | None = option(
        None, "DVB-S2 budget: frequency band (sets the carrier frequency and zenith loss)")
    frequency_ghz: float | None = option(
        None, "DVB-S2 budget: carrier frequency, instead of a band [GHz]", gt=0, le=1000)
    eirp_dbw: float | None = option(None, "DVB-S2 budget: transmitter EIRP [dBW]")
    gt_dbk: float | None = option(None, "DVB-S2 budget: receiver figure of merit G/T [dB/K]")
    bandwidth_mhz: float | None = option(
        None, "DVB-S2 budget: channel bandwidth [MHz]", gt=0, le=1e5)
    rolloff: float = option(
        0.2, "DVB-S2 budget: pulse-shaping roll-off factor (symbol rate = bandwidth / (1 + "
             "rolloff))", ge=0.05, le=0.35)
    max_modulation: Literal["QPSK", "8PSK", "16APSK", "32APSK"] = option(
        "32APSK", "DVB-S2 budget: highest modulation the adaptive coding may pick")
    other_losses_db: float = option(
        1.0, "DVB-S2 budget: pointing, polarisation and implementation losses [dB]", ge=0)
    margin_db: float = option(
        1.0, "DVB-S2 budget: link margin kept above the required Es/N0 [dB]", ge=0)
    zenith_atmospheric_loss_db: float | None = option(
        None, "DVB-S2 budget: clear-sky atmospheric loss at zenith, scaled by elevation "
              "(default: the band's; links.weather replaces it) [dB]", ge=0)

    def __post_init__(self) -> None:
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

    def model(self) -> RateModel:
        """The rate model this link names: a fixed rate, a preset, or its budget (the
        budget's options pass by name; the band fills in frequency and zenith loss)."""
        if self.rate_mbps is not None:
            return FixedRate(self.rate_mbps * 1e6)
        if self.preset is not None:
            return LINK_PRESETS[self.preset]
        frequency, zenith = BANDS[self.band] if self.band else (self.frequency_ghz, 0.08)
        budget = {f.name: getattr(self, f.name) for f in fields(LinkBudget)}
        budget["frequency_ghz"] = self.frequency_ghz or frequency
        if self.zenith_atmospheric_loss_db is None:
            budget["zenith_atmospheric_loss_db"] = zenith
        return LinkBudget(**budget)


def atmospheric_loss_db(zenith_db: float, elevation_deg: npt.ArrayLike) -> np.ndarray:
    """Zenith attenuation scaled by the path length through a 6 km equivalent atmosphere
    above a curved Earth (ITU-R P.618's low-elevation form; 1/sin(el) at high elevation)."""
    sin_el = np.sin(np.radians(np.maximum(np.asarray(elevation_deg, dtype=float), 0.0)))
    return zenith_db * 2.0 / (np.sqrt(sin_el**2 + 2.0 * 6.0 / 8500.0) + sin_el)


def look_angles(propagator: Propagator, sat_index: np.ndarray, station: GroundStation,
                t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slant range (km) and elevation (deg) of satellites seen from one station."""
    rho = propagator.ecef_at(sat_index, t_s) - station.ecef_km()
    distance = np.linalg.norm(rho, axis=1)
    elevation = np.degrees(np.arcsin(np.clip(rho @ station.up_unit() / distance, -1.0, 1.0)))
    return distance, elevation


@dataclass(frozen=True)
class LinkState:
    """Why a budget link's interval runs at its rate: the atmospheric loss (dB), Es/N0 (dB)
    and MODCOD name of the interval's end with the lower Es/N0 (the one that sets its
    rate)."""

    attenuation_db: np.ndarray
    es_n0_db: np.ndarray
    modcod: np.ndarray

    def take(self, index: np.ndarray) -> "LinkState":
        return LinkState(self.attenuation_db[index], self.es_n0_db[index], self.modcod[index])


@dataclass(frozen=True)
class RateProfiles:
    """Piecewise-constant rates over every window of a plan: window w owns the intervals
    ``offsets[w]:offsets[w + 1]`` of ``start``, ``end`` (s) and ``rate`` (bit/s), and, for a
    DVB-S2 budget, their ``state``."""

    start: np.ndarray
    end: np.ndarray
    rate: np.ndarray
    offsets: np.ndarray
    state: LinkState | None = None

    def window(self, w: int) -> slice:
        return slice(self.offsets[w], self.offsets[w + 1])

    def restrict(self, source: np.ndarray, start: np.ndarray, end: np.ndarray) -> "RateProfiles":
        """Profiles of window pieces: piece j is window ``source[j]`` cut to [start, end]
        (what is left of a pass after an outage)."""
        starts, ends, kept, offsets = [], [], [], [0]
        for w, a, b in zip(source, start, end):
            span = self.window(int(w))
            s_, e_ = np.maximum(self.start[span], a), np.minimum(self.end[span], b)
            keep = e_ > s_
            starts.append(s_[keep])
            ends.append(e_[keep])
            kept.append(np.arange(span.start, span.stop)[keep])
            offsets.append(offsets[-1] + int(keep.sum()))
        index = _concat(kept).astype(int)
        state = None if self.state is None else self.state.take(index)
        return RateProfiles(_concat(starts), _concat(ends), self.rate[index], np.array(offsets),
                            state)

    def state_over(self, w: int, start_s: float, end_s: float) -> tuple[float, float, str]:
        """(attenuation dB, Es/N0 dB, MODCOD) while window ``w`` was used from ``start_s`` to
        ``end_s``: the time-weighted mean loss and Es/N0, and the MODCOD that carried the
        most bytes (NaN, NaN, '' without a budget)."""
        span = self.window(w)
        if self.state is None or span.stop == span.start:
            return float("nan"), float("nan"), ""
        overlap = np.clip(np.minimum(self.end[span], end_s)
                          - np.maximum(self.start[span], start_s), 0.0, None)
        if overlap.sum() <= 0.0:  # an instant: the interval it fell in
            overlap = ((self.start[span] <= start_s) & (start_s <= self.end[span])) * 1.0
            overlap = overlap if overlap.any() else np.ones(len(overlap))
        state = self.state.take(np.arange(span.start, span.stop))
        weight = overlap / overlap.sum()
        carried = overlap * self.rate[span]
        best = int(np.argmax(carried)) if carried.any() else int(np.argmax(overlap))
        return (float(weight @ state.attenuation_db), float(weight @ state.es_n0_db),
                str(state.modcod[best]))

    def capacity_bytes(self) -> np.ndarray:
        """Bytes each window can carry: the integral of its rate."""
        carried = np.concatenate([[0.0], np.cumsum(self.rate * (self.end - self.start) / 8.0)])
        return carried[self.offsets[1:]] - carried[self.offsets[:-1]]


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def rate_profiles(plan: ContactPlan, propagator: Propagator,
                  stations: Sequence[GroundStation], model: RateModel | Sequence[RateModel],
                  sample_s: float = 5.0, attenuation: Attenuation | None = None
                  ) -> RateProfiles:
    """Sample every window of ``plan`` every ``sample_s`` seconds (and at both ends) with
    the link of its station (``model``: one for all, or one per station, in the order of
    ``stations``); fixed-rate links need no geometry, and a plan served by fixed rates
    alone gets one interval per window. ``attenuation`` (``links.weather``) replaces a
    budget's clear-sky loss, at each station's carrier frequency."""
    windows = plan.windows
    station_index = {s.id: i for i, s in enumerate(stations)}
    models: list[RateModel] = (list(model) if isinstance(model, (list, tuple))
                               else [cast(RateModel, model)] * len(stations))  # one for all
    fixed = [m for m in models if isinstance(m, FixedRate)]
    if isinstance(model, FixedRate) or len(fixed) == len(models):
        bps = np.array([m.bps for m in fixed] if fixed else [np.nan])
        rate = (np.full(len(windows), model.bps) if isinstance(model, FixedRate)
                else bps[windows["station"].map(station_index).to_numpy(dtype=int)])
        return RateProfiles(start=windows["start_s"].to_numpy(), end=windows["end_s"].to_numpy(),
                            rate=rate, offsets=np.arange(len(windows) + 1))
    n_intervals = np.maximum(1, np.ceil(windows["duration_s"].to_numpy() / sample_s)).astype(int)
    edges = [np.linspace(a, b, n + 1) for a, b, n in
             zip(windows["start_s"], windows["end_s"], n_intervals)]
    times = np.concatenate(edges) if edges else np.empty(0)
    owner = np.repeat(np.arange(len(windows)), n_intervals + 1)
    sat = windows["sat_index"].to_numpy()[owner]
    st = windows["station"].map(station_index).to_numpy()[owner]
    sample_rate = np.zeros(len(times))
    loss, es_n0 = np.full(len(times), np.nan), np.full(len(times), np.nan)
    modcod = np.full(len(times), "", dtype=object)  # fixed-rate stations: no MODCOD
    for i, (station, link) in enumerate(zip(stations, models)):
        mask = st == i
        if mask.any() and isinstance(link, FixedRate):
            sample_rate[mask] = link.bps
        elif mask.any():
            # FixedRate and LinkBudget are the only rate models, so this one is a budget.
            budget = cast(LinkBudget, link)
            distance, elevation = look_angles(propagator, sat[mask], station, times[mask])
            loss[mask] = (budget.atmosphere_db(elevation) if attenuation is None else
                          attenuation(budget.frequency_ghz, i, owner[mask], elevation))
            es_n0[mask] = budget.es_n0_db(distance, elevation, loss[mask])
            chosen = budget.select_modcod(es_n0[mask])
            sample_rate[mask] = budget.rate_of(chosen)
            modcod[mask] = budget.modcod_names(chosen)
    # Every sample but the last of its window opens an interval; its rate is the lower of
    # its ends', and so is its state.
    opens = np.ones(len(times), dtype=bool)
    opens[np.cumsum(n_intervals + 1) - 1] = False
    left = np.flatnonzero(opens)
    low = np.where(es_n0[left + 1] < es_n0[left], left + 1, left)
    state = LinkState(loss[low], es_n0[low], modcod[low])
    return RateProfiles(start=times[left], end=times[left + 1],
                        rate=np.minimum(sample_rate[left], sample_rate[left + 1]),
                        offsets=np.concatenate([[0], np.cumsum(n_intervals)]), state=state)


def with_capacity(plan: ContactPlan, down: RateProfiles, up: RateProfiles) -> pd.DataFrame:
    """The plan's windows with ``downlink_bytes`` and ``uplink_bytes`` columns."""
    return plan.windows.assign(downlink_bytes=down.capacity_bytes(),
                               uplink_bytes=up.capacity_bytes())
