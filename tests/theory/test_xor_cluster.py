"""theory.xor_cluster: the signed label sum's spread and the regime ratios of an XOR-cluster configuration."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from theory.xor_cluster import signed_sum_sd, xor_regime


@pytest.mark.parametrize("eta", [0.0, 0.1, 0.3])
def test_signed_sum_spread_matches_the_data_distribution(eta):
    # s_1 = sum_i y_i <x_i, mu_1> / ||mu||^2 without the noise part: +-1 for points on axis 1, times the noisy label
    rng, n, reps = np.random.default_rng(7), 200, 20000
    cluster = rng.integers(0, 4, size=(reps, n))
    y = np.where(cluster < 2, 1.0, -1.0) * np.where(rng.random((reps, n)) < eta, -1.0, 1.0)
    s1 = (y * np.where(cluster == 0, 1.0, np.where(cluster == 1, -1.0, 0.0))).sum(axis=1)
    assert abs(s1.mean()) < 0.05 * signed_sum_sd(n)
    assert s1.std() == pytest.approx(signed_sum_sd(n), rel=0.02)


def test_regime_ratios_from_a_config():
    r = xor_regime(SimpleNamespace(n=200, d=16000, mu_norm=22.0))
    assert r.aim_ratio == pytest.approx(200 * 484 / 16000)
    assert r.fit_ratio == pytest.approx(3 * 10 * 484 / 16000)
    assert r.snr == pytest.approx(484 / (200 ** 0.51 * math.sqrt(16000)))
    assert r.dim == pytest.approx(16000 / (200 ** 2 * 484))
    assert "aim ratio" in r.summary()


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="mu_norm"):
        xor_regime(SimpleNamespace(n=200, d=16000, mu_norm=0.0))
    with pytest.raises(ValueError, match="n must be"):
        signed_sum_sd(0)
