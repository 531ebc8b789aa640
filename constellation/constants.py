"""Physical constants shared by the physics layer and the tests, declared once.

Two Earth models meet here, on purpose:

- **WGS72** is the gravity model SGP4 itself is defined with (``sgp4.api`` propagates with
  ``WGS72`` by default, as the element sets are fitted with it). The gravitational
  parameter converts between mean motion and semi-major axis, so it is taken from SGP4's
  model: the semi-major axis of a designed Walker shell is then the one SGP4 recovers from
  the mean motion we write, and a perigee read off an element set is SGP4's.
- **WGS84** is the geodetic frame: station coordinates, latitudes and heights of
  sub-satellite points (skyfield's ``wgs84``, so our geodesy and skyfield's agree), and
  the Earth's radius for geometry (line of sight, shadow, altitudes above the surface).

Values come from ``sgp4.earth_gravity`` and ``skyfield`` where those define them. This
module imports nothing of ours, so every layer may use it (tests/test_layering.py).
"""

from __future__ import annotations

from sgp4.earth_gravity import wgs72, wgs84
from skyfield.constants import C as _C_M_S
from skyfield.toposlib import wgs84 as _wgs84_geoid

EARTH_RADIUS_KM = wgs84.radiusearthkm
"""WGS84 equatorial radius (6378.137 km): geodesy and geometry."""

WGS84_INVERSE_FLATTENING = _wgs84_geoid.inverse_flattening
"""1/f of the WGS84 ellipsoid (298.257223563)."""

WGS84_FLATTENING = 1.0 / WGS84_INVERSE_FLATTENING

MU_EARTH_KM3_S2 = wgs72.mu
"""Earth's gravitational parameter GM of SGP4's WGS72 model (398600.8 km^3/s^2)."""

EARTH_ROTATION_RAD_S = 7.292115146706979e-5
"""Mean angular velocity of the Earth as the GMST1982 rate (IERS), the rate that goes with
the GMST1982 angle SGP4's TEME frame is rotated by."""

SPEED_OF_LIGHT_M_S = _C_M_S
"""The speed of light in vacuum, exact (299 792 458 m/s)."""

SUN_RADIUS_KM = 695_700.0
"""The Sun's nominal radius (IAU 2015 Resolution B3)."""
