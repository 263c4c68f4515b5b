"""The claims' seed protocol: Clopper-Pearson bounds, the claim-seed blocks, fresh seeds, n/a verdicts, and
`sims reproduce KEY --fresh K` end to end on a tiny fake paper (double-descent at ci, a few seconds per seed)."""

import json
import math

import numpy as np
import pytest

from sims.claims import NotApplicable, Claim, RunSpec, evaluate, get_claims, keys
from sims.claims import _CATALOG, seeds
from sims.claims.fresh import aggregate, reproduce_fresh
from sims.cli import main


@pytest.mark.parametrize("k, n, lo, hi", [
    (0, 10, 0.0, 0.30850), (10, 10, 0.69150, 1.0), (5, 10, 0.18709, 0.81291), (9, 10, 0.55498, 0.99747),
    (1, 1, 0.025, 1.0), (18, 20, 0.68302, 0.98765)])
def test_clopper_pearson_known_values(k, n, lo, hi):
    """Exact values: k = n gives (alpha/2)^(1/n), k = 0 gives 1 - (alpha/2)^(1/n); the others from tables."""
    got = seeds.clopper_pearson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_clopper_pearson_bad_counts():
    for k, n in ((3, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match="0 <= k <= n"):
            seeds.clopper_pearson(k, n)


def test_claim_blocks_avoid_tuning_seeds_and_fresh_seeds_are_random():
    assert set(seeds.CLAIM_BLOCK) == set(keys())
    for key, block in seeds.CLAIM_BLOCK.items():
        assert not seeds.is_tuning(key, block), key
        assert seeds.claim_base(key, "default", None) == block
        assert seeds.claim_base(key, "ci", None) is None  # mechanics only: the preset's own seeds
        assert seeds.claim_base(key, "default", 7) == 7
    assert seeds.is_tuning("lyu2024", 100) and seeds.is_tuning("xu2024", 0) and not seeds.is_tuning("xu2024", 10**6)
    a, b = seeds.draw_fresh(5), seeds.draw_fresh(5)
    assert len(set(a)) == 5 and a != b  # unseeded: two draws differ (equal with probability ~1e-42)
    assert all(seeds.FRESH[0] <= s < seeds.FRESH[1] for s in a + b)
    with pytest.raises(ValueError, match="at least 1"):
        seeds.draw_fresh(0)


def test_not_applicable_is_a_verdict_and_never_a_pass():
    def absent(runs):
        raise NotApplicable("the run never groks")

    row = evaluate(Claim("c", "s", {}, absent, ">=", 1.0), {})
    assert row["verdict"] == "n/a" and row["measured"] is None and "never groks" in row["details"]
    assert evaluate(Claim("c", "s", {}, lambda runs: math.nan, ">=", 1.0), {})["verdict"] == "FAIL"


def _report(seed, verdicts):
    return dict(base_seed=seed, run_failures=[], rows=[dict(id=f"c{i}", statement="", expected="", verdict=v,
                                                            rate=0.6 if i == 1 else None, measured=1.0)
                                                       for i, v in enumerate(verdicts)])


def test_aggregate_every_seed_or_a_rate():
    """c0 deterministic, c1 a rate claim at level 0.6, c2 n/a everywhere, c3 reported."""
    reports = [_report(s, ["PASS", "PASS", "n/a", "reported"]) for s in range(10)]
    rows = {r["id"]: r for r in aggregate(reports)}
    assert rows["c0"]["verdict"] == "PASS" and rows["c0"]["passed"] == 10
    assert rows["c1"]["verdict"] == "PASS" and rows["c1"]["lower"] == pytest.approx(0.6915, abs=1e-4)
    assert rows["c2"]["verdict"] == "n/a" and rows["c2"]["passed"] == 0
    assert rows["c3"]["verdict"] == "reported"
    reports[3]["rows"][0]["verdict"] = reports[3]["rows"][1]["verdict"] = "FAIL"
    rows = {r["id"]: r for r in aggregate(reports)}
    assert rows["c0"]["verdict"] == "FAIL"  # a deterministic claim must hold on every seed
    assert rows["c1"]["verdict"] == "FAIL" and rows["c1"]["lower"] < 0.6  # 9/10: lower bound 0.555
    reports[4]["rows"][0]["verdict"] = "n/a"
    assert {r["id"]: r for r in aggregate(reports)}["c0"]["passed"] == 8  # n/a is not a pass
    reports[5]["rows"][0]["verdict"] = "RUN FAILED"
    assert {r["id"]: r for r in aggregate(reports)}["c0"]["n"] == 9  # a failed run is no verdict: left out of n


@pytest.fixture
def fake_paper():
    """A registered paper with a checked claim, a rate claim, an n/a claim and a reported one on double-descent."""
    spec = {"dd": RunSpec.of("double-descent", seeds=1)}
    peak = lambda runs: float(np.max(runs["dd"].metric("risk_min_norm")))

    def absent(runs):
        raise NotApplicable("no premise here")

    from sims.claims import Paper
    get_claims("xu2024")  # load the catalog first
    _CATALOG.add("fake-fresh", Paper("fake-fresh", "Fake", [
        Claim("peak-positive", "the peak risk is positive", spec, peak, ">=", 0.0),
        Claim("peak-rate", "the same as a rate", spec, peak, ">=", 0.0, rate=0.3),
        Claim("premise", "never applies", spec, absent, ">=", 0.0),
        Claim("peak", "the peak", spec, peak, "report")]))
    yield "fake-fresh"
    _CATALOG.entries.pop("fake-fresh")


def test_fresh_reproduce_records_seeds_and_rates(fake_paper, tmp_path, capsys):
    report = reproduce_fresh(fake_paper, 2, preset="ci", out=tmp_path / "f", device="cpu", log=lambda m: None)
    saved = json.loads((tmp_path / "f" / "report.json").read_text())
    assert len(saved["fresh_seeds"]) == 2 and all(s >= seeds.FRESH[0] for s in saved["fresh_seeds"])
    rows = {r["id"]: r for r in saved["rows"]}
    assert [p["seed"] for p in rows["peak-positive"]["per_seed"]] == saved["fresh_seeds"]
    assert rows["peak-positive"]["passed"] == 2 and rows["peak-positive"]["verdict"] == "PASS"
    assert rows["peak-rate"]["lower"] == pytest.approx(seeds.clopper_pearson(2, 2)[0])
    assert rows["premise"]["verdict"] == "n/a" and rows["peak"]["verdict"] == "reported"
    one = json.loads((tmp_path / "f" / f"seed{saved['fresh_seeds'][0]}" / "report.json").read_text())
    assert one["base_seed"] == saved["fresh_seeds"][0]
    md = (tmp_path / "f" / "report.md").read_text()
    assert "mechanics only" in md and "2/2" in md and "PASS (ci: mechanics only)" in md
    assert report["dir"] == str(tmp_path / "f")
    code = main(["reproduce", fake_paper, "--preset", "ci", "--fresh", "1", "--quiet", "--device", "cpu",
                 "--out", str(tmp_path / "g")])
    assert code == 0 and "1/1" in capsys.readouterr().out
    assert main(["reproduce", fake_paper, "--fresh", "2", "--seed", "3", "--out", str(tmp_path / "h")]) == 2
    assert main(["reproduce", fake_paper, "--fresh", "0", "--out", str(tmp_path / "i")]) == 2
    assert not (tmp_path / "h").exists() and not (tmp_path / "i").exists()


def test_ci_report_says_mechanics_only(fake_paper, tmp_path):
    from sims.claims.runner import reproduce

    report = reproduce(fake_paper, preset="ci", out=tmp_path / "r", device="cpu", log=lambda m: None)
    md = (tmp_path / "r" / "report.md").read_text()
    assert report["base_seed"] is None and "checks the mechanics only" in md.splitlines()[2]
    assert "PASS (ci: mechanics only)" in md and "**n/a**" in md and "premise absent: no premise here" in md


def test_binomial_se():
    from sims.claims import binomial_se

    assert binomial_se(0.9, 1000) == pytest.approx(math.sqrt(0.09 / 1000))
    assert binomial_se([0.5, 0.99], 100) == pytest.approx(0.05) and binomial_se(1.0, 10) == 0.0
