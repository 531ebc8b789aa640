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

_HALF_PAIR = 0.45  # each round samples f this many tolerances either side of the estimate
_MAX_ROUNDS = 100  # enough to halve a year-long bracket to a nanosecond


def bracketed_root(f: Callable[[np.ndarray, np.ndarray], np.ndarray], guess: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, lo_negative: np.ndarray,
                   tolerance: float) -> np.ndarray:
    """Per row, a root of ``f(rows, t)`` in [lo, hi], within ``tolerance`` of a sign change
    of f, where f is negative at lo if ``lo_negative`` (positive at lo otherwise).

    NaN counts as negative (for the contact search: a decayed satellite is not visible, and
    a peak lies before the decay). Each round evaluates f, in one call, at a pair of points
    0.45 tolerance either side of the current estimate: when the estimate is within that
    distance of the root the bracket is then narrower than the tolerance and the row is
    done; otherwise the secant through the pair (a slope from the function itself) gives
    the next estimate, or the bracket's midpoint where the secant leaves the bracket or two
    rounds in a row did not halve it. The answer is the secant point of the final
    bracket's ends where both values are known and finite, else its finite end (the
    visible side at a decay), else its midpoint.
    """
    guess, lo, hi = (np.array(x, dtype=float) for x in (guess, lo, hi))
    lo_negative = np.asarray(lo_negative, dtype=bool)
    f_lo, f_hi = np.full(lo.shape, np.nan), np.full(hi.shape, np.nan)
    inside = np.isfinite(guess) & (guess > lo) & (guess < hi)
    x = np.where(inside, guess, 0.5 * (lo + hi))
    slow = np.zeros(lo.shape, dtype=int)  # rounds in a row that did not halve the bracket
    active = np.flatnonzero(hi - lo > tolerance)

    def narrow(rows: np.ndarray, t: np.ndarray, value: np.ndarray) -> None:
        """Move the bracket end on t's side of the root to t, where that shrinks it."""
        after = ~(value > 0.0) == lo_negative[rows]
        raise_lo, lower_hi = after & (t > lo[rows]), ~after & (t < hi[rows])
        lo[rows] = np.where(raise_lo, t, lo[rows])
        f_lo[rows] = np.where(raise_lo, value, f_lo[rows])
        hi[rows] = np.where(lower_hi, t, hi[rows])
        f_hi[rows] = np.where(lower_hi, value, f_hi[rows])

    for _ in range(_MAX_ROUNDS):
        if active.size == 0:
            break
        width = hi[active] - lo[active]
        left = np.clip(x[active] - _HALF_PAIR * tolerance, lo[active], hi[active])
        right = np.clip(x[active] + _HALF_PAIR * tolerance, lo[active], hi[active])
        values = f(np.concatenate([active, active]), np.concatenate([left, right]))
        f_left, f_right = values[:active.size], values[active.size:]
        narrow(active, left, f_left)
        narrow(active, right, f_right)
        a, b = lo[active], hi[active]
        slow[active] = np.where(b - a <= 0.5 * width, 0, slow[active] + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = right - f_right * (right - left) / (f_right - f_left)
        useful = np.isfinite(secant) & (secant > a) & (secant < b) & (slow[active] < 2)
        x[active] = np.where(useful, secant, 0.5 * (a + b))
        active = active[b - a > tolerance]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = lo - f_lo * (hi - lo) / (f_hi - f_lo)
    known = np.isfinite(between) & (between >= lo) & (between <= hi)
    finite_end = np.where(np.isfinite(f_lo), lo, np.where(np.isfinite(f_hi), hi, 0.5 * (lo + hi)))
    return np.where(known, between, finite_end)
