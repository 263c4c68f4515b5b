"""The transitions atlas at the ci preset: every entry gets a row, a verdict per hypothesis, and a figure; a
second call into the same directory reuses the runs."""

import csv
import json

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
