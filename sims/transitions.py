"""Transitions and phases in metric curves, detected one way for every setting, claim and figure (numpy only).

A curve is `values[i]` at eval step `steps[i]` (increasing). Functions here answer:

- `crossing`: the first step at which a curve reaches a level (upwards or downwards), linearly interpolated
  between the two eval steps that bracket it;
- `fraction_step`: the step at which a curve has moved a given fraction of the way from one level (its value
  at a start step, by default the first) to another (by default its final value): "the transition";
- `plateaus`: stretches over which a curve stays within a band, with their length in decades of steps;
- `turning_points`: the local extrema of a noisy curve that matter: the curve is smoothed by a running median
  over `window` evals, then an extremum counts only when the curve moves away from it by at least
  `min_rel_change` (relative to the extremum's magnitude, with an absolute floor `atol`) before the next
  opposite extremum (a zig-zag filter, so noise below that size never makes a turn);
- `descent_ascent_descent`: the LC paper's three phases (Humayun, Balestriero, Baraniuk 2024) found from the
  turning points: a minimum, then a maximum, then a fall of at least `min_fall` of the maximum;
- `settled`: whether a curve has stopped moving over the last stretch of log-time;
- `record`: all of the above for one member's test, train and LC curves, as the JSON record every setting
  with a transition writes into summary.json (and the atlas reads), with the rule it was measured by (so the
  atlas can measure it again under other analysis choices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Crossing", "Turn", "crossing", "fraction_step", "plateaus", "smooth", "turning_points",
           "descent_ascent_descent", "last_descent", "settled", "record"]


@dataclass(frozen=True)
class Crossing:
    """Where a curve reaches a level: `step` interpolated between the eval steps `between` (lo, hi);
    `index` is the first eval index at or past the level."""

    step: float
    index: int
    between: tuple[int, int]
    level: float


@dataclass(frozen=True)
class Turn:
    """A turning point: kind 'min' or 'max', eval index, step, smoothed value there."""

    kind: str
    index: int
    step: int
    value: float


def _curve(steps, values) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if s.shape != v.shape or len(s) == 0:
        raise ValueError(f"steps and values must be 1-D of equal non-zero length; got {s.shape} and {v.shape}")
    if np.any(np.diff(s) <= 0):
        raise ValueError("steps must be strictly increasing")
    return s, v


def crossing(steps, values, level: float, *, direction: str = "up", after: float | None = None) -> Crossing | None:
    """The first eval after step `after` (exclusive; default: from the first eval) at which the curve is at or
    past `level` (>= for 'up', <= for 'down'), interpolated linearly in step from the eval before it.

    None when it never gets there. If the first considered eval is already past the level, its step is returned.
    NaN values are never past a level.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down'; got {direction!r}")
    s, v = _curve(steps, values)
    past = (v >= level) if direction == "up" else (v <= level)
    ok = np.ones_like(past) if after is None else s > after
    hits = np.flatnonzero(past & ok)
    if len(hits) == 0:
        return None
    i = int(hits[0])
    first = int(np.flatnonzero(ok)[0])
    if i == first or not np.isfinite(v[i - 1]):
        return Crossing(float(s[i]), i, (int(s[i]), int(s[i])), float(level))
    t = (level - v[i - 1]) / (v[i] - v[i - 1])
    return Crossing(float(s[i - 1] + t * (s[i] - s[i - 1])), i, (int(s[i - 1]), int(s[i])), float(level))


def fraction_step(steps, values, fraction: float = 0.5, *, start: float | None = None,
                  end_value: float | None = None) -> Crossing | None:
    """The step at which the curve has first moved `fraction` of the way from its value at eval step `start`
    (default: the first eval) to `end_value` (default: its final value), searching after `start`.

    The direction (up or down) follows the sign of end - start. None if the two levels are equal.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}")
    s, v = _curve(steps, values)
    i0 = 0 if start is None else int(np.flatnonzero(s == start)[0]) if np.any(s == start) else None
    if i0 is None:
        raise ValueError(f"start={start!r} is not an eval step")
    lo, hi = v[i0], v[-1] if end_value is None else end_value
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return None
    level = lo + fraction * (hi - lo)
    return crossing(s, v, level, direction="up" if hi > lo else "down", after=s[i0])


def plateaus(steps, values, *, tol: float, min_decades: float = 0.5) -> list[tuple[int, int, float]]:
    """Maximal runs of two or more consecutive evals over which max - min <= 2 tol, spanning at least
    `min_decades` of log10(step + 1): [(first step, last step, mean value)], in order."""
    s, v = _curve(steps, values)
    out, i = [], 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and np.ptp(v[i:j + 2]) <= 2 * tol:
            j += 1
        if j > i and np.log10((s[j] + 1) / (s[i] + 1)) >= min_decades:
            out.append((int(s[i]), int(s[j]), float(np.mean(v[i:j + 1]))))
        i = j + 1
    return out


def smooth(values, window: int = 3) -> np.ndarray:
    """Running median over `window` (odd) consecutive values, the window shrinking at the ends."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer; got {window!r}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    h = window // 2
    return np.array([np.median(v[max(0, i - h):i + h + 1]) for i in range(len(v))])


def turning_points(steps, values, *, window: int = 3, min_rel_change: float = 0.1,
                   atol: float = 1e-12) -> list[Turn]:
    """The turning points of the smoothed curve that survive a zig-zag filter of relative size min_rel_change.

    From the first eval on, the filter tracks the running extreme in the current direction; once the
    smoothed curve moves away from it by more than max(min_rel_change * |extreme|, atol), the extreme is a
    turning point (unless it is the first eval, where the curve merely starts) and the direction flips.
    The extreme still open at the last eval is not a turning point (the curve has not turned yet).
    """
    s, _ = _curve(steps, values)
    v = smooth(values, window)
    turns: list[Turn] = []
    hi = lo = 0
    trend = 0  # +1 rising (tracking a max), -1 falling (tracking a min), 0 not yet known
    for i in range(1, len(v)):
        hi = i if v[i] > v[hi] else hi
        lo = i if v[i] < v[lo] else lo
        if trend >= 0 and v[hi] - v[i] > max(min_rel_change * abs(v[hi]), atol):
            if hi > 0 and trend == 1:
                turns.append(Turn("max", hi, int(s[hi]), float(v[hi])))
            trend, lo = -1, i
        elif trend <= 0 and v[i] - v[lo] > max(min_rel_change * abs(v[lo]), atol):
            if lo > 0 and trend == -1:
                turns.append(Turn("min", lo, int(s[lo]), float(v[lo])))
            trend, hi = 1, i
    return turns


def descent_ascent_descent(steps, values, *, min_fall: float = 0.2, window: int = 3,
                           min_rel_change: float = 0.1) -> dict | None:
    """The three LC phases: a descent to a minimum, an ascent to a maximum, then a final fall of at least
    `min_fall` (a fraction of the maximum) of the smoothed curve. Returns {'min': Turn, 'max': Turn,
    'fall_step': first step at which the fall reaches min_fall, 'fall': the largest fall after the max as a
    fraction of it}, or None when the curve has no minimum followed by a maximum and such a fall."""
    s, _ = _curve(steps, values)
    v = smooth(values, window)
    turns = turning_points(s, values, window=window, min_rel_change=min_rel_change)
    for a, b in zip(turns, turns[1:]):
        if a.kind == "min" and b.kind == "max" and b.value > 0:
            after = v[b.index:]
            fall = float((b.value - after.min()) / b.value)
            if fall >= min_fall:
                k = b.index + int(np.flatnonzero(after <= b.value * (1 - min_fall))[0])
                return {"min": a, "max": b, "fall_step": int(s[k]), "fall": fall}
    return None


def last_descent(steps, values, *, window: int = 3, min_rel_change: float = 0.1) -> Turn | None:
    """The start of the curve's last descent: its last turning point if that is a maximum (the curve ends
    falling), else None. A curve that falls from the first eval on and never turns has no turning point, so no
    last descent (None): the start of a run is not a turn."""
    s, _ = _curve(steps, values)
    turns = turning_points(s, values, window=window, min_rel_change=min_rel_change)
    return turns[-1] if turns and turns[-1].kind == "max" else None


def settled(steps, values, *, tol: float = 0.02, decades: float = 0.5, atol: float = 1e-9) -> bool:
    """Whether the curve has stopped moving: over the evals in the last `decades` of log10(step) (steps >=
    last / 10^decades), every value is within tol * max(|final value|, atol) of the final value.

    False when fewer than two evals fall in that stretch (the run cannot show that it settled) or a value there
    is not finite."""
    s, v = _curve(steps, values)
    tail = v[s >= s[-1] / 10 ** decades]
    if len(tail) < 2 or not np.all(np.isfinite(tail)):
        return False
    return bool(np.max(np.abs(tail - tail[-1])) <= tol * max(abs(tail[-1]), atol))


def record(steps, *, test, train=None, lc: dict | None = None, start: float | None = None, fraction: float = 0.5,
           time_per_step: float | None = None, window: int = 3, min_rel_change: float = 0.1,
           min_change: float = 0.0) -> dict:
    """The transition record of one member's curves (what `summary.json` keeps under 'transitions').

    test: the generalisation curve (test accuracy, or minus the test loss: it must rise); train: training
    accuracy (memorisation = the first step it reaches 1); lc: {point set: LC curve}; start: the step from
    which the transition is measured (e.g. 1 after a catastrophic first step); time_per_step: lr, for the
    continuous time of the transition; min_change: a test curve that moves by less than this from `start` to
    its end has no transition (the half-way step of a flat, noisy curve is noise): its generalisation step,
    time and delay are None and 'no_transition' says why. Returns plain JSON-able values (None where absent):
    {generalisation_step, generalisation_between, generalisation_time, memorisation_step, delay (generalisation
    / memorisation step), test_start, test_end, no_transition, lc: {set: {turns, last_descent_step,
    three_phases}}, rule: {start, fraction, window, min_rel_change, min_change}}.
    """
    s, v = _curve(steps, test)
    if min_change < 0:
        raise ValueError(f"min_change must be >= 0; got {min_change!r}")
    if start is not None and not np.any(s == start):
        raise ValueError(f"start={start!r} is not an eval step")
    lo = float(v[0 if start is None else int(np.flatnonzero(s == start)[0])])
    moved = abs(float(v[-1]) - lo)
    flat = moved < min_change
    cross = None if flat else fraction_step(s, v, fraction, start=start)
    out = dict(generalisation_step=None if cross is None else cross.step,
               generalisation_between=None if cross is None else list(cross.between),
               generalisation_time=None if cross is None or time_per_step is None else cross.step * time_per_step,
               test_start=lo, test_end=float(v[-1]), memorisation_step=None, delay=None,
               no_transition=f"test curve moves by {moved:.3g} < {min_change:g}" if flat else None, lc={},
               rule=dict(start=start, fraction=fraction, window=window, min_rel_change=min_rel_change,
                         min_change=min_change))
    if train is not None:
        mem = crossing(s, train, 1.0 - 1e-9)
        out["memorisation_step"] = None if mem is None else int(s[mem.index])
        if mem is not None and cross is not None and s[mem.index] > 0:
            out["delay"] = cross.step / s[mem.index]
    for name, curve in (lc or {}).items():
        turns = turning_points(s, curve, window=window, min_rel_change=min_rel_change)
        last = last_descent(s, curve, window=window, min_rel_change=min_rel_change)
        three = descent_ascent_descent(s, curve, window=window, min_rel_change=min_rel_change)
        out["lc"][name] = dict(turns=[dict(kind=t.kind, step=t.step, value=t.value) for t in turns],
                               last_descent_step=None if last is None else last.step,
                               three_phases=None if three is None else dict(
                                   min_step=three["min"].step, max_step=three["max"].step,
                                   fall_step=three["fall_step"], fall=three["fall"]))
    return out
