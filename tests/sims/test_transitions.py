"""sims.transitions on synthetic curves with known answers."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from sims import transitions as tr


def _log_steps(n=60, last=10**5):
    return np.unique(np.concatenate([[0], np.rint(np.geomspace(1, last, n)).astype(int)]))


@given(t=st.floats(10, 5e4), lo=st.floats(0, 0.6), gain=st.floats(0.05, 0.4), frac=st.floats(0.1, 0.9))
def test_fraction_step_of_a_sigmoid_in_log_step(t, lo, gain, frac):
    """A curve lo -> lo + gain, logistic in log(step) around t: the `frac` crossing is known in closed form."""
    s = _log_steps(200)
    v = lo + gain / (1 + np.exp(-8 * (np.log(s + 1) - np.log(t))))
    c = tr.fraction_step(s, v, frac, end_value=lo + gain)
    want = np.exp(np.log(t) + np.log(frac / (1 - frac)) / 8) - 1
    assume(s[1] < want < s[-1] / 2)
    i = np.searchsorted(s, want)
    assert c.between == (int(s[i - 1]), int(s[i])) or c.between[0] <= want <= c.between[1]
    assert c.between[0] <= c.step <= c.between[1]
    assert abs(np.log(c.step + 1) - np.log(want + 1)) < 0.1  # interpolation error on a log-spaced grid


def test_crossing_interpolates_and_respects_direction():
    s, v = np.array([0, 10, 20, 30]), np.array([0.0, 0.2, 0.6, 1.0])
    c = tr.crossing(s, v, 0.4)
    assert c.step == pytest.approx(15.0) and c.between == (10, 20) and c.index == 2
    assert tr.crossing(s, v, 2.0) is None
    assert tr.crossing(s, v[::-1], 0.4, direction="down").step == pytest.approx(15.0)
    assert tr.crossing(s, v, 0.1, after=15).step == 20.0  # the first considered eval is already past it
    with pytest.raises(ValueError, match="direction"):
        tr.crossing(s, v, 0.4, direction="sideways")
    with pytest.raises(ValueError, match="increasing"):
        tr.crossing([0, 2, 1], [0, 1, 2], 0.5)


def test_fraction_step_from_a_start_step_and_flat_curves():
    s = np.array([0, 1, 2, 4, 8, 16])
    v = np.array([0.9, 0.5, 0.5, 0.6, 0.8, 0.9])  # init, then a dip at step 1, then the rise
    c = tr.fraction_step(s, v, 0.5, start=1)
    assert c.level == pytest.approx(0.7) and c.between == (4, 8) and c.step == pytest.approx(6.0)
    assert tr.fraction_step(s, np.ones(6), 0.5) is None
    with pytest.raises(ValueError, match="not an eval step"):
        tr.fraction_step(s, v, 0.5, start=3)


@given(level=st.floats(0.3, 0.7), start=st.integers(1, 20), length=st.integers(5, 30), noise=st.floats(0, 0.01))
def test_plateau_of_known_span(level, start, length, noise):
    s = _log_steps(60)
    rng = np.random.default_rng(0)
    v = np.linspace(-10, 10, len(s))  # a steep ramp (0.4 per eval) ...
    v[start:start + length] = level + noise * rng.uniform(-1, 1, length)  # ... with one flat stretch
    found = tr.plateaus(s, v, tol=0.011, min_decades=0.0)
    assert len(found) == 1
    first, last, mean = found[0]
    assert first == s[start] and last == s[start + length - 1] and abs(mean - level) < 0.011
    assert tr.plateaus(s, v, tol=0.011, min_decades=10.0) == []


@given(a=st.floats(2, 10), b=st.floats(10, 40), c=st.floats(0.5, 0.95), noise=st.floats(0, 0.03),
       seed=st.integers(0, 100))
def test_turning_points_of_descent_ascent_descent(a, b, c, noise, seed):
    """LC-like curve: falls from b to a (to its minimum at eval 20), rises to b (max at eval 40), falls to c*a."""
    assume(b >= 1.5 * a)  # moves well above the 15% threshold
    rng = np.random.default_rng(seed)
    s = _log_steps(60)
    n = len(s)
    v = np.concatenate([np.linspace(b, a, 20), np.linspace(a, b, 21)[1:], np.linspace(b, c * a, n - 40)])
    v = v * (1 + noise * rng.uniform(-1, 1, n))
    turns = tr.turning_points(s, v, window=3, min_rel_change=0.15)
    assert [t.kind for t in turns] == ["min", "max"]
    assert abs(turns[0].index - 19) <= 2 and abs(turns[1].index - 39) <= 2
    phases = tr.descent_ascent_descent(s, v, min_fall=0.2, min_rel_change=0.15)
    assert phases is not None and phases["fall"] >= 1 - c * a / b - 0.1
    assert tr.last_descent(s, v, min_rel_change=0.15).index == turns[1].index


def test_curves_without_the_three_phases():
    s = _log_steps(40)
    n = len(s)
    falling = np.linspace(10, 1, n)
    assert tr.turning_points(s, falling) == []
    assert tr.descent_ascent_descent(s, falling) is None
    assert tr.last_descent(s, falling) is None  # the start of the run is not a turning point
    rising_after_dip = np.concatenate([np.linspace(10, 2, n // 2), np.linspace(2, 20, n - n // 2)])
    assert [t.kind for t in tr.turning_points(s, rising_after_dip)] == ["min"]
    assert tr.descent_ascent_descent(s, rising_after_dip) is None  # no final fall
    assert tr.last_descent(s, rising_after_dip) is None
    small_fall = np.concatenate([np.linspace(10, 2, 15), np.linspace(2, 20, 15), np.linspace(20, 18, n - 30)])
    assert tr.descent_ascent_descent(s, small_fall, min_fall=0.2) is None  # 10% < 20%


@given(noise=st.floats(0.0, 0.04), seed=st.integers(0, 1000))
def test_noise_below_the_threshold_never_makes_a_turn(noise, seed):
    s = _log_steps(50)
    v = 5.0 * (1 + noise * np.random.default_rng(seed).uniform(-1, 1, len(s)))
    assert tr.turning_points(s, v, window=1, min_rel_change=0.1) == []


def test_record_keeps_its_rule_and_a_flat_curve_has_no_transition():
    s = np.array([0, 1, 2, 4, 8, 16, 32])
    flat = np.array([0.10, 0.11, 0.09, 0.12, 0.10, 0.13, 0.11])  # noise around chance: moves by 0.02 from step 2
    rec = tr.record(s, test=flat, start=2, min_change=0.05, window=5, min_rel_change=0.025)
    assert rec["generalisation_step"] is None and rec["delay"] is None and "0.02 < 0.05" in rec["no_transition"]
    assert rec["rule"] == dict(start=2, fraction=0.5, window=5, min_rel_change=0.025, min_change=0.05)
    assert tr.record(s, test=flat, start=2)["generalisation_step"] is not None  # without the rule: a noise step
    rising = np.array([0.1, 0.1, 0.1, 0.2, 0.6, 0.9, 0.9])
    assert tr.record(s, test=rising, min_change=0.05)["no_transition"] is None
    with pytest.raises(ValueError, match="not an eval step"):
        tr.record(s, test=rising, start=3)
    with pytest.raises(ValueError, match="min_change"):
        tr.record(s, test=rising, min_change=-1)


def test_settled_over_the_last_half_decade():
    s = _log_steps(60)
    still = 0.9 - 0.5 * np.exp(-s / 100.0)  # stops moving long before the end
    assert tr.settled(s, still)
    moving = 0.9 - 0.5 * np.exp(-s / 3e4)  # still rising over the last half decade
    assert not tr.settled(s, moving)
    assert tr.settled(s, np.zeros(len(s)))  # exactly flat at 0 (LC of a net whose kinks left the data)
    assert not tr.settled([0, 1], [1.0, 1.0])  # one eval in the last half decade cannot show it
