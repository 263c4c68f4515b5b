"""The transitions atlas at the ci preset: every entry gets a row, a verdict per hypothesis, and a figure; a
second call into the same directory reuses the runs."""

import csv
import json

import numpy as np

from sims import atlas
from sims.cli import main


def test_atlas_at_ci(tmp_path, capsys):
    out = tmp_path / "atlas"
    assert main(["atlas", "--preset", "ci", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "atlas.json").read_text())
    names = [e.sim for e in atlas.ENTRIES]
    assert [r["setting"] for r in saved["table"]] == names
    assert set(saved["verdicts"]) == set(names)
    for v in saved["verdicts"].values():
        assert {k: v[k]["verdict"] for k in "abc"}.keys() == {"a", "b", "c"}
        assert all(v[k]["verdict"] in ("holds", "fails", "mixed", "n/a") for k in "abc")
    rows = list(csv.DictReader(open(out / "atlas.csv")))
    assert [r["setting"] for r in rows] == names
    assert (out / "atlas.png").stat().st_size > 20_000 and "## Hypotheses" in printed
    xor = next(r for r in saved["table"] if r["setting"] == "xor-cluster")
    assert 1 <= xor["transition_step"] <= 12.25 and xor["memorisation_step"] == 1  # within sqrt(n) at ci
    stamp = {p: p.stat().st_mtime for p in out.glob("runs/*/summary.json")}
    atlas.atlas("ci", out, device="cpu")  # reuses every run
    assert {p: p.stat().st_mtime for p in out.glob("runs/*/summary.json")} == stamp
    assert json.loads((out / "atlas.json").read_text())["table"] == saved["table"]


class _View:
    """The part of a run view the atlas reads: summary records, steps, metric curves [T, E]."""

    def __init__(self, recs, steps, curves):
        self.summary, self.steps, self._curves = {"transitions": recs}, np.asarray(steps), curves
        self.metric_names = list(curves)

    def metric(self, name):
        return np.asarray(self._curves[name], dtype=float)


def _rec(g, last, start=0.1, end=0.9, mem=10):
    return dict(generalisation_step=g, generalisation_time=None, delay=None if g is None else g / mem,
                memorisation_step=mem, test_start=start, test_end=end,
                lc={"train": dict(turns=[], last_descent_step=last, three_phases=None)})


def test_a_flat_test_curve_has_no_transition():
    entry = atlas.Entry("random-labels", "control", control=True, min_change=0.05)
    view = _View([_rec(3, None, 0.10, 0.11), _rec(50, None, 0.10, 0.60)], [0, 10, 100], {})
    flat, moving = atlas._records(view, entry)
    assert flat["generalisation_step"] is None and flat["delay"] is None and "moves by 0.01" in flat["no_transition"]
    assert moving["generalisation_step"] == 50
    assert atlas._records(view, atlas.Entry("x", "no threshold"))[0]["generalisation_step"] == 3


def test_verdicts_follow_the_numbers():
    steps = [0, 10, 100, 1000]
    lc_train = [[5, 5], [8, 8], [8, 8], [2, 2]]  # falls by 75% after memorisation
    lc_random = [[3, 3], [3, 3], [3, 3], [2.9, 1]]  # member 0 barely moves, member 1 falls 67% (< 75%)
    view = _View([_rec(100, 90), _rec(100, 400)], steps, {"lc_train": lc_train, "lc_random": lc_random})
    v = atlas.hypotheses(atlas.Row(atlas.Entry("s", "s"), view, atlas._records(view)))
    assert v["a"]["verdict"] == "mixed" and v["a"]["members"] == "1/2"  # last descent 90 <= 100; 400 > 100
    assert v["b"]["verdict"] == "n/a"
    assert v["c"]["verdict"] == "holds"  # 0.03 and 0.67 both below 0.75
    view._curves["lc_random"] = [[3, 3], [3, 3], [3, 3], [0.3, 0.3]]  # random points fall 90% > 75%
    assert atlas.hypotheses(atlas.Row(atlas.Entry("s", "s"), view, atlas._records(view)))["c"]["verdict"] == "fails"
