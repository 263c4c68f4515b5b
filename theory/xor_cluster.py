"""Where an XOR-cluster configuration sits against the conditions of Xu, Wang, Frei, Vardi, Hu (ICLR 2024).

Data: x = mu + xi with mu one of +-mu_1 (clean label +1), +-mu_2 (clean label -1), ||mu_1|| = ||mu_2||, mu_1 orthogonal
to mu_2, xi ~ N(0, I_d), labels flipped with probability eta; net f(x) = sum_j a_j relu(<w_j, x>), a_j = +-1/sqrt(m),
small init, full-batch GD on the logistic loss. The paper's regime (constants [unverified], recalled from reviews):
||mu||^2 >= C n^0.51 sqrt(d) and d >= C n^2 ||mu||^2, out of reach at any CPU size.

What decides a single draw (measured with `scripts/xor_regime.py`, see papers/xu2024.md "Fresh seeds"): the
*signed label sum along each cluster axis*, s_k = sum_i y_i <x_i, mu_k> / ||mu||^2, k = 1, 2. It is the mu-component
of the first GD step's linear classifier sum_i y_i x_i, it is ~ N(0, n / 2) for every eta (each point on axis k adds
+-1 with equal chance), and it enters the theorem's two phases as:

- step 1 fits the noisy labels when a training point's own term ||xi_i||^2 ~ d beats the signal cross term
  ||mu||^2 |s_k| (the paper bounds |s_k| <= n and asks d >= C n ||mu||^2): `fit_ratio` is ||mu||^2 |s| / d at a
  three-sigma draw, |s| = 3 sqrt(n / 2);
- the cluster that the step-1 linear classifier puts on the wrong side (sign of s_k) is learned later by the units
  that GD aims at it; a unit's aim comes from the correlation of its random init with mu, of size
  ~ n ||mu|| / sqrt(d) against the signed count, ~ sqrt(n): `aim_ratio` = n ||mu||^2 / d is the square of their
  ratio. Draws with a large |s_k| fail to generalise, and the |s_k| (in sigmas) that is tolerated grows with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["XorRegime", "xor_regime", "signed_sum_sd"]


def signed_sum_sd(n: int) -> float:
    """Standard deviation of the signed label sum along one cluster axis, sum_i y_i <x_i, mu_k> / ||mu||^2: sqrt(n / 2).

    >>> signed_sum_sd(200)
    10.0
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    return math.sqrt(n / 2)


@dataclass(frozen=True)
class XorRegime:
    """Ratios of one configuration (see the module docstring).

    snr: ||mu||^2 / (n^0.51 sqrt d), the paper's signal condition (>= C).
    dim: d / (n^2 ||mu||^2), the paper's dimension condition (>= C).
    fit_ratio: ||mu||^2 * 3 sqrt(n / 2) / d, the step-1 cross term of a three-sigma signed sum against the own term.
    aim_ratio: n ||mu||^2 / d, the init's aim at the clusters against the signed count imbalance (squared).
    """

    snr: float
    dim: float
    fit_ratio: float
    aim_ratio: float

    def summary(self) -> str:
        return (f"||mu||^2/(n^0.51 sqrt d) = {self.snr:.3g}, d/(n^2 ||mu||^2) = {self.dim:.2g}, "
                f"fit ratio 3 sqrt(n/2) ||mu||^2/d = {self.fit_ratio:.3g}, aim ratio n ||mu||^2/d = {self.aim_ratio:.3g}")


def xor_regime(cfg) -> XorRegime:
    """The ratios of a config with fields n, d, mu_norm (an `sims` xor-cluster Config or any object with them).

    >>> from types import SimpleNamespace
    >>> round(xor_regime(SimpleNamespace(n=200, d=16000, mu_norm=22.0)).aim_ratio, 3)
    6.05
    """
    n, d, mu2 = int(cfg.n), int(cfg.d), float(cfg.mu_norm) ** 2
    if n < 1 or d < 1 or mu2 <= 0:
        raise ValueError(f"need n >= 1, d >= 1 and mu_norm > 0; got n={n}, d={d}, mu_norm={cfg.mu_norm}")
    return XorRegime(snr=mu2 / (n ** 0.51 * math.sqrt(d)), dim=d / (n ** 2 * mu2),
                     fit_ratio=3 * signed_sum_sd(n) * mu2 / d, aim_ratio=n * mu2 / d)
