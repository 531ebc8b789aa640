"""A vectorised bracketing root finder for functions known only through their values.

The contact search settles rises, sets and peaks on SGP4's positions alone: SGP4's velocity
is not the derivative of its position (metres per second apart on deep-space orbits), so a
Newton step that takes its slope from the velocity stops short of the root of the
position-derived elevation by more than the stated tolerance on slow, grazing crossings.
Here every answer comes with a sign-changing bracket of the sampled function itself that
is no wider than the tolerance, so the tolerance holds by construction.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

_PROBE = 0.9  # the probe after each step lies this many tolerances away, on the root's side
_MAX_ROUNDS = 100  # enough to halve a year-long bracket to a nanosecond


def bracketed_root(f: Callable[[np.ndarray, np.ndarray], np.ndarray], guess: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, lo_negative: np.ndarray,
                   tolerance: float) -> np.ndarray:
    """Per row, a root of ``f(rows, t)`` in [lo, hi], within ``tolerance`` of a sign change
    of f, where f is negative at lo if ``lo_negative`` (positive at lo otherwise).

    NaN counts as negative (for the contact search: a decayed satellite is not visible, and
    a peak lies before the decay). Each round evaluates f at the current estimate and at a
    probe ``0.9 tolerance`` beyond it on the root's side: when the estimate is within that
    distance of the root the bracket is then narrower than the tolerance and the row is
    done; otherwise the secant through the two close samples (a slope from the function
    itself) gives the next estimate, or the bracket's midpoint where the secant leaves the
    bracket or the bracket did not halve. The answer is the secant point of the final
    bracket's ends where both values are known and finite, else its finite end (the
    visible side at a decay), else its midpoint.
    """
    guess, lo, hi = (np.array(x, dtype=float) for x in (guess, lo, hi))
    lo_negative = np.asarray(lo_negative, dtype=bool)
    f_lo, f_hi = np.full(lo.shape, np.nan), np.full(hi.shape, np.nan)
    inside = np.isfinite(guess) & (guess > lo) & (guess < hi)
    x = np.where(inside, guess, 0.5 * (lo + hi))
    active = np.flatnonzero(hi - lo > tolerance)

    def narrow(rows: np.ndarray, t: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Move the bracket end on t's side of the root to t; True where the root is after t."""
        after = ~(value > 0.0) == lo_negative[rows]
        lo[rows] = np.where(after, t, lo[rows])
        f_lo[rows] = np.where(after, value, f_lo[rows])
        hi[rows] = np.where(after, hi[rows], t)
        f_hi[rows] = np.where(after, f_hi[rows], value)
        return after

    for _ in range(_MAX_ROUNDS):
        if active.size == 0:
            break
        width = hi[active] - lo[active]
        t = x[active]
        f_t = f(active, t)
        after = narrow(active, t, f_t)
        probe = np.clip(t + np.where(after, _PROBE, -_PROBE) * tolerance, lo[active], hi[active])
        f_probe = f(active, probe)
        narrow(active, probe, f_probe)
        a, b = lo[active], hi[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = probe - f_probe * (probe - t) / (f_probe - f_t)
        useful = np.isfinite(secant) & (secant > a) & (secant < b) & (b - a <= 0.5 * width)
        x[active] = np.where(useful, secant, 0.5 * (a + b))
        active = active[b - a > tolerance]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = lo - f_lo * (hi - lo) / (f_hi - f_lo)
    known = np.isfinite(between) & (between >= lo) & (between <= hi)
    finite_end = np.where(np.isfinite(f_lo), lo, np.where(np.isfinite(f_hi), hi, 0.5 * (lo + hi)))
    return np.where(known, between, finite_end)
