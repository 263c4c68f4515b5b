"""The seed protocol of the claims, written once, and pass rates over seeds.

- Tuning seeds: presets, thresholds and tolerances are chosen on seeds in `TUNING` (0-99; two explorations also
  looked at seed 100, recorded per paper in `TUNED_ON`). No claim is reported on them as evidence.
- Claim seeds: each paper's claims run on its own block of base seeds, `CLAIM_BLOCK[key]`, `CLAIM_BLOCK[key] + 1`,
  ... (one per member of a configuration), chosen before any of its runs was looked at for the preset.
  `sims reproduce KEY` uses this block (the `ci` preset, which checks mechanics only, keeps the preset's own seeds).
- Fresh seeds: `sims reproduce KEY --fresh K` draws K base seeds at random (an unseeded generator) from `FRESH`,
  a range no one tunes on, records them in the report, and gives each claim's verdict per seed and its pass rate.

A claim must pass on every seed, except a rate claim (the paper's statement holds "with high probability over the
data"), which passes when the 95% Clopper-Pearson lower bound of its pass rate clears its stated level.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TUNING", "FRESH", "RATE", "CLAIM_BLOCK", "TUNED_ON", "MEANINGLESS_PRESETS", "claim_base", "draw_fresh",
           "clopper_pearson", "is_tuning"]

TUNING = range(0, 100)  # every seed a preset, threshold or tolerance was chosen on lies here (and seed 100, below)
FRESH = (10**6, 2**31 - 10**3)  # --fresh draws base seeds here; members add +0, +1, ... (kept below 2**31)
RATE = 0.6  # the level of a rate claim: 95% lower bound of its pass rate; needs 10/10 at n = 10, 18/20 at n = 20
MEANINGLESS_PRESETS = ("ci",)  # presets whose verdicts check the mechanics only, never the paper

# the first seed of each paper's claim block (members use block, block + 1, ...): outside TUNING and TUNED_ON
CLAIM_BLOCK = {"arora2019": 100, "benign-linear": 100, "frei2023": 100, "hu2020": 100, "xu2024": 100,
               "humayun2024": 200, "lyu2024": 300}

# seeds each paper's preset was chosen on (as its page states); seed 100 was also used by two explorations
TUNED_ON = {"arora2019": range(0, 3), "benign-linear": range(0, 20), "frei2023": range(0, 3), "hu2020": range(0, 3),
            "xu2024": range(0, 20), "humayun2024": (0, 1, 2, 100), "lyu2024": (0, 1, 2, 100)}


def claim_base(key: str, preset: str, seed: int | None) -> int | None:
    """The first seed of every configuration of paper `key`'s claims: `seed` if given, else the paper's claim block
    (None, the preset's own seed, for a preset that checks mechanics only)."""
    if seed is not None:
        return seed
    if preset in MEANINGLESS_PRESETS:
        return None
    if key not in CLAIM_BLOCK:
        raise ValueError(f"paper {key!r} has no claim-seed block; add it to sims.claims.seeds.CLAIM_BLOCK "
                         f"(papers with one: {sorted(CLAIM_BLOCK)})")
    return CLAIM_BLOCK[key]


def is_tuning(key: str, seed: int | None) -> bool:
    """True when base seed `seed` (None: the preset's own, 0) or its first members were used to tune paper `key`."""
    first = 0 if seed is None else seed
    return first in TUNING or any(first <= s < first + 3 for s in TUNED_ON.get(key, ()))


def draw_fresh(k: int, rng: np.random.Generator | None = None) -> list[int]:
    """K distinct base seeds drawn uniformly from `FRESH` (an unseeded generator unless `rng` is given)."""
    if k < 1:
        raise ValueError(f"--fresh needs at least 1 seed; got {k}")
    rng = np.random.default_rng() if rng is None else rng
    out: set[int] = set()
    while len(out) < k:
        out.update(int(s) for s in rng.integers(*FRESH, size=k - len(out)))
    return sorted(out)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided `level` confidence interval of a binomial rate from k successes in n:
    lower = Beta(alpha/2; k, n - k + 1), upper = Beta(1 - alpha/2; k + 1, n - k), alpha = 1 - level
    (lower 0 when k = 0, upper 1 when k = n)."""
    from scipy.stats import beta

    if not (0 <= k <= n and n >= 1):
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k={k}, n={n}")
    alpha = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi
