"""Link budgets against hand-computed figures (presets against published ones: test_presets)."""

import math

import numpy as np
import pandas as pd
import pytest

from orbitfl.constellation.contacts import WINDOW_COLUMNS, ContactPlan
from orbitfl.constellation.links import (
    FixedRate,
    LinkBudget,
    atmospheric_loss_db,
    rate_profiles,
)

LINK = LinkBudget(frequency_ghz=8.2, eirp_dbw=10.0, gt_dbk=28.0, bandwidth_mhz=75.0,
                  rolloff=0.2, zenith_atmospheric_loss_db=0.08, other_losses_db=1.0,
                  margin_db=1.0)


def hand_es_n0(distance_km: float, elevation_deg: float) -> float:
    fspl = 20 * math.log10(4 * math.pi * distance_km * 1e3 * 8.2e9 / 299_792_458.0)
    sin_el = math.sin(math.radians(elevation_deg))
    atmosphere = 0.08 * 2 / (math.sqrt(sin_el**2 + 12 / 8500) + sin_el)
    return 10 + 28 - fspl - atmosphere - 1.0 + 228.6 - 10 * math.log10(75e6 / 1.2)


@pytest.mark.parametrize("distance, elevation, expected", [
    (1000.0, 30.0, "32APSK 8/9"),   # Es/N0 16.76 dB: 15.69 + 1 closes, 16.05 + 1 does not
    (1700.0, 10.0, "16APSK 3/4"),   # 11.85 dB: 16APSK 3/4 (10.21) beats 8PSK 8/9 (10.69)
    (2600.0, 5.0, "8PSK 2/3"),      # 7.74 dB: 8PSK 2/3 (6.62) beats QPSK 9/10 (6.42)
])
def test_modcod_selection_matches_hand_computed_budgets(distance, elevation, expected):
    es_n0 = LINK.es_n0_db(np.array([distance]), np.array([elevation]))[0]
    assert es_n0 == pytest.approx(hand_es_n0(distance, elevation), abs=1e-9)
    index = LINK.select_modcod(np.array([es_n0]))[0]
    name, threshold, efficiency = LINK.modcods()[index]
    assert name == expected
    # Nothing more efficient closes.
    assert all(t + 1.0 > es_n0 for n, t, e in LINK.modcods() if e > efficiency)
    rate = LINK.rate_bps(np.array([distance]), np.array([elevation]))[0]
    assert rate == pytest.approx(efficiency * 75e6 / 1.2)


def test_modulation_cap_and_link_outage():
    capped = LinkBudget(8.2, 10.0, 28.0, 75.0, max_modulation="8PSK")
    index = capped.select_modcod(np.array([30.0]))[0]
    assert capped.modcods()[index][0] == "8PSK 9/10"
    assert LINK.rate_bps(np.array([40_000.0]), np.array([5.0]))[0] == 0.0  # no MODCOD closes


def test_atmospheric_loss_scales_with_airmass():
    assert atmospheric_loss_db(0.1, np.array(90.0)) == pytest.approx(0.1, rel=2e-3)
    assert atmospheric_loss_db(0.1, np.array(30.0)) == pytest.approx(0.2, rel=5e-3)
    low = atmospheric_loss_db(0.1, np.array([0.0, 2.0, 5.0]))
    assert np.all(np.isfinite(low)) and np.all(np.diff(low) < 0)


def test_profile_capacity_is_the_integral_of_the_rate():
    windows = pd.DataFrame([[0, "s", 1, "gs", 0.0, 60.0, 60.0, 45.0, 30.0]],
                           columns=WINDOW_COLUMNS)
    profiles = rate_profiles(ContactPlan(windows, 100.0), None, [], FixedRate(8e6))
    assert profiles.capacity_bytes() == pytest.approx([60e6])
