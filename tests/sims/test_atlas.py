"""The transitions atlas: synthetic members with known verdicts (sign-aware hypotheses, every radius, settling,
normalisations, the sensitivity table), and the ci preset end to end (every field written; a second call into the
same directory reuses the runs)."""

import csv
import json

import numpy as np
import pytest

from sims import atlas
from sims import atlas_analysis as an
from sims.cli import main

STEPS = np.unique(np.concatenate([[0], np.rint(np.geomspace(1, 1e5, 80)).astype(int)]))
MEM, GEN = 100, 1000  # memorisation and generalisation steps of the synthetic members: delay 10
RULE = dict(start=None, fraction=0.5, window=3, min_rel_change=0.1, min_change=0.0)


def _logistic(centre, width=0.15):
    return 1 / (1 + np.exp(-(np.log10(STEPS + 1) - np.log10(centre)) / width))


def _lc(peak_step, fall, rise=1.0, base=10.0):
    """LC: flat at base to memorisation, up by `rise` (relative) to a peak at peak_step, then down by `fall` of it."""
    x = np.log10(STEPS + 1)
    up = base * (1 + rise * np.clip((x - 2) / (np.log10(peak_step) - 2), 0, 1))
    return up * (1 - fall * _logistic(3 * peak_step, 0.1))


def _member(train_lc, random_lc=None, *, mig=((0.2, 0.3), (1.1, 1.4)), steps=STEPS, test=None, seed=0, noise=0.003):
    rng = np.random.default_rng(seed)
    jitter = lambda v: v * (1 + noise * rng.uniform(-1, 1, len(v)))
    test = 0.1 + 0.8 * _logistic(GEN) if test is None else test
    lc = {("train", r): jitter(v) for r, v in (train_lc.items() if isinstance(train_lc, dict) else [(None, train_lc)])}
    lc.update({("random", r): jitter(np.full(len(steps), 5.0) if random_lc is None else random_lc) for _, r in lc})
    migration = dict(before=dict(boundary_share=mig[0][0], boundary_ratio=mig[1][0]),
                     after=dict(boundary_share=mig[0][1], boundary_ratio=mig[1][1]))
    return an.Member(steps, test, (steps >= MEM).astype(float), lc, RULE, migration, float(GEN), float(MEM))


def test_a_clean_descent_holds_robustly():
    members = [_member(_lc(GEN, 0.6), seed=s) for s in range(3)]
    res = an.verdicts(members)
    assert res["settled"] and res["flags"] == []
    for h in ("a", "a2", "b", "c"):
        v = res["verdicts"][h]
        assert v["verdict"] == "holds" and v["robust"] and v["robustness"] >= an.ROBUST, (h, v)
        assert v["per_member"] == ["holds"] * 3
    assert res["migration"] == dict(raw=[[0.2, 0.3]] * 3, ratio=[[1.1, 1.4]] * 3)
    lo, hi = res["lag"]
    assert -an.WINDOW <= lo <= hi <= an.WINDOW  # the descent begins around the transition


def test_a_verdict_that_flips_with_one_choice_is_not_robust():
    small_fall = [_member(_lc(GEN, 0.07), seed=s) for s in range(3)]  # a 7% fall: a turn at 2.5% and 5%, not 10%
    v = an.verdicts(small_fall)["verdicts"]["a"]
    assert v["verdict"] == "fails"  # the setting's own filter is 10%
    assert v["modal"] == "holds" and v["robustness"] < an.ROBUST and not v["robust"]
    split = [_member(_lc(GEN, 0.6), mig=((0.2, 0.1), (1.1, 1.4)), seed=s) for s in range(3)]  # raw falls, ratio rises
    b = an.verdicts(split)["verdicts"]["b"]
    assert b["verdict"] == "normalisation-dependent" and b["robustness"] == 0.5 and not b["robust"]


def test_rising_lc_at_the_data_fails_c_and_a_fall_from_init_is_no_descent():
    rising = [_member(_lc(1e5, 0.0, rise=2.0), seed=s) for s in range(2)]  # random LC flat: changes less, but
    v = an.verdicts(rising)["verdicts"]                                       # LC at the data rises
    assert v["c"]["verdict"] == "fails" and v["a"]["verdict"] == "fails"
    falling = 10 * (1 - 0.9 * _logistic(10, 0.5))  # falls from the first evaluation and never turns
    assert an.verdicts([_member(falling)])["verdicts"]["a"]["verdict"] == "fails"
    frei = _member(falling, test=np.where(STEPS >= 1, 0.9, 0.1))  # generalises with its first step: no delay
    frei.train = (STEPS >= 1).astype(float)
    assert an.member_verdicts(frei, an.Choice())["a"][0] == "n/a"  # never a vacuous "holds"
    flat_test = _member(falling, test=np.full(len(STEPS), 0.1))  # no transition: (a) cannot be asked
    assert an.member_verdicts(flat_test, an.Choice())["a"][0] == "n/a"


def test_verdicts_per_radius_and_an_unsettled_run():
    two = [_member({0.1: _lc(GEN, 0.6), 0.5: _lc(1e5, 0.0, rise=2.0)}, seed=s) for s in range(2)]
    v = an.verdicts(two)["verdicts"]["a"]
    assert v["per_radius"] == {"0.1": "holds", "0.5": "fails"} and v["verdict"] == "radius-dependent"
    assert v["per_member"] == ["radius-dependent"] * 2
    short = STEPS[STEPS <= 2 * GEN]  # stops at 2x its transition with the test curve still rising
    cut = _member(_lc(GEN, 0.6)[:len(short)], steps=short, test=(0.1 + 0.8 * _logistic(GEN))[:len(short)])
    cut.lc = {k: v[:len(short)] for k, v in cut.lc.items()}
    res = an.verdicts([cut])
    assert not res["settled"] and "still moving: test" in res["settle"][0]
    assert all(v["verdict"] == an.UNDETERMINED and not v["robust"] for v in res["verdicts"].values())
    coarse = _member(_lc(GEN, 0.6))
    coarse.g = 150.0  # few evaluations between memorisation (100) and the transition
    assert "evaluations between memorisation and transition" in an.verdicts([coarse])["flags"][0]


def test_atlas_at_ci(tmp_path, capsys):
    out = tmp_path / "atlas"
    assert main(["atlas", "--preset", "ci", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "atlas.json").read_text())
    names = [e.sim for e in atlas.registered()]
    assert [r["setting"] for r in saved["table"]] == names and set(saved["settings"]) == set(names)
    assert saved["meaningful"] is False and "mean nothing" in printed
    for s in saved["settings"].values():
        assert isinstance(s["settled"], bool) and set(s["verdicts"]) == set(an.HYPOTHESES)
        for v in s["verdicts"].values():
            assert {"verdict", "robustness", "per_radius", "per_member"} <= set(v) and 0 < v["robustness"] <= 1
            assert len(v["per_member"]) == 3
        assert set(s["migration"]) == {"raw", "ratio"} and all(len(p) == 3 for p in s["migration"].values())
    for sim in ("xor-cluster", "modular-addition"):  # every member's slice (modular addition: measured by the atlas)
        mig = saved["settings"][sim]["migration"]
        assert all(p is not None and len(p) == 2 for p in mig["raw"] + mig["ratio"]), sim
    rows = list(csv.DictReader(open(out / "atlas.csv")))
    assert [r["setting"] for r in rows] == names
    assert {"settled"} | {f"robust_{h}" for h in an.HYPOTHESES} <= set(rows[0])
    assert (out / "atlas.png").stat().st_size > 20_000 and "## Robust verdicts" in printed
    table = {r["setting"]: r for r in saved["table"]}
    assert 1 <= table["xor-cluster"]["transition_step"] <= 12.25 and table["xor-cluster"]["memorisation_step"] == 1
    stamp = {p: p.stat().st_mtime for p in out.glob("runs/*/summary.json")}
    atlas.atlas("ci", out, device="cpu")  # reuses every run
    assert {p: p.stat().st_mtime for p in out.glob("runs/*/summary.json")} == stamp
    assert json.loads((out / "atlas.json").read_text())["table"] == saved["table"]
    assert f"the runs of {len(names)} of {len(names)} settings reused" in (out / "atlas.md").read_text().splitlines()[0]


def test_rows_come_from_the_settings_registration():
    import dataclasses

    from sims import registry

    fields = {f.name for f in dataclasses.fields(atlas.Entry)} - {"sim"}
    assert set(registry.ATLAS_KEYS) == fields | {"order"}
    rows = atlas.registered()
    assert [e.sim for e in rows][:2] == ["xor-cluster", "dichotomy-sparse"]
    assert {e.sim for e in rows if e.control} == {"leaky-relu-highdim", "random-labels"}
    for bad in (dict(label="x"), dict(label="x", order=0, lable="typo")):
        with pytest.raises(ValueError, match="atlas must give"):
            registry._check_atlas("s", bad, transitions=lambda run: [])
    with pytest.raises(ValueError, match="needs a transitions function"):
        registry._check_atlas("s", dict(label="x", order=0), transitions=None)
