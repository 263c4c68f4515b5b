"""What `sims reproduce --update-papers` writes into papers/: short claims-table cells with their details below,
a header that says when runs were reused, and figures/KEY/ without the files an earlier update no longer writes."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np

from sims import atlas, atlas_analysis, atlas_report
from sims.claims import runner


def _row(i, statement="short", measured=1.0, details=""):
    return dict(id=f"c{i}", statement=statement, paper="p", rate=False, control=None, runs=["r"],
                expected=">= 1", measured=measured, details=details, verdict="PASS")


def _report(rows=(), figures=(), **over):
    return dict(dict(key="xu2024", title="Xu et al.", preset="default", seed=None, elapsed_s=1.0, train_s=99.0,
                     figures=list(figures), rows=list(rows), runs=["a", "b"], reused=0,
                     environment=dict(device="cpu", threads=1, torch="x")), **over)


def _cells(line):
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_long_cells_are_cut_and_detailed_below_the_table():
    long_details = "min over seeds; per seed [" + ", ".join(f"0.{i}9{i}" for i in range(60)) + "] | with a pipe"
    statement = "x" * 40 + " see `first-step-is-linear-and-more` for " + "y" * 50  # the cut falls in the code
    text = runner.table(_report([_row(0), _row(1, statement=statement, details=long_details)]))
    table, rest = text.split("\n\n", 1)
    rows = table.splitlines()[2:]
    assert len(rows) == 2
    for cell in _cells(rows[0]) + _cells(rows[1]):
        assert len(cell) <= runner.CELL + 8, cell
        assert cell.count("`") % 2 == 0  # no code span left open
    assert _cells(rows[0])[1] == "short"  # a short cell is whole, with no reference
    says, measured = _cells(rows[1])[1], _cells(rows[1])[4]
    assert says.endswith("... [1]") and measured.endswith("... [2]")
    details = rest.split("\n")
    assert details[0] == "Details:" and details[2].startswith("1. `c1`, paper says: " + statement)
    assert details[3] == f"2. `c1`, measured: 1 ({long_details})"


def test_a_table_without_long_cells_has_no_details():
    assert "Details" not in runner.table(_report([_row(0)]))


def test_the_header_says_when_the_runs_were_reused():
    assert "1.0 s (reused runs; the runs' own training: 99 s)" in runner._header(_report(reused=2))
    assert "1 of 2 runs reused" in runner._header(_report(reused=1))
    assert "1.0 s (the runs' own training: 99 s)" in runner._header(_report())


def test_update_papers_removes_the_figures_it_no_longer_writes(tmp_path):
    papers, out = tmp_path / "papers", tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    figdir = papers / "figures" / "xu2024"
    figdir.mkdir(parents=True)
    names = ["xu2024-new.png", "xor-cluster-curves.png", "xor-cluster-partition.png"]
    for n in names:
        (out / "figures" / n).write_bytes(b"new")
    old = ["xu2024-old.png", "xor-cluster-lr0.5-curves.png", "xor-cluster-shown-old.png"]
    kept = ["my-sketch.png", "notes.txt", "xor-cluster-shown-old.png"]
    for n in old + kept:
        (figdir / n).write_bytes(b"old")
    (papers / "xu2024.md").write_text("# Xu\n\n![p](figures/xu2024/xor-cluster-partition.png)\n"
                                      "![o](figures/xu2024/xor-cluster-shown-old.png)\n\n"
                                      "<!-- claims:begin -->\n<!-- claims:end -->\n")
    runner.update_paper(papers, _report(figures=names), out)
    # the paper's figure and the run figure the page shows are written; a run figure it does not show is not;
    # the earlier update's files are gone, except the one the page still shows; other names are left alone
    assert sorted(p.name for p in figdir.iterdir()) == sorted(
        ["xu2024-new.png", "xor-cluster-partition.png", "my-sketch.png", "notes.txt", "xor-cluster-shown-old.png"])
    assert (figdir / "xor-cluster-partition.png").read_bytes() == b"new"
    assert (figdir / "my-sketch.png").read_bytes() == b"old"


def test_a_seed_update_leaves_the_figures_alone(tmp_path):
    papers, out = tmp_path / "papers", tmp_path / "report"
    figdir = papers / "figures" / "xu2024"
    figdir.mkdir(parents=True)
    (figdir / "xu2024-old.png").write_bytes(b"old")
    (papers / "xu2024.md").write_text("# Xu\n")
    runner.update_paper(papers, _report(seed=100, figures=["xu2024-new.png"]), out)
    assert [p.name for p in figdir.iterdir()] == ["xu2024-old.png"]


def test_every_column_of_the_atlas_table_is_defined():
    steps = np.array([0, 1, 2, 4, 8])
    view = SimpleNamespace(metric_names=["lc_train@r0.1"], config=SimpleNamespace(lc_radius=0.1), steps=steps,
                           metric=lambda name: np.ones((5, 2)), summary={})
    recs = [dict(generalisation_step=4, memorisation_step=1, delay=4.0)] * 2
    row = atlas.Row(entry=SimpleNamespace(sim="xor-cluster", control=False), view=view, records=recs)
    verdict = dict(verdict="holds", robust=True, robustness=1.0)
    result = dict(settled=True, lag=[0.1, 0.2], migration=dict(raw=[(0.3, 0.4)], ratio=[(1.0, 1.2)]),
                  verdicts={h: verdict for h in atlas_analysis.HYPOTHESES})
    table = [atlas._table_row(row, result)]
    text = atlas_report.markdown([], table, {}, "default", 1.0)
    header = text.split("## Table", 1)[1].strip().splitlines()[0]
    columns = text.split("Columns:", 1)[1]
    generic = {f"{k}_{h}": f"`{k}_<h>`" for k in ("verdict", "robust", "robustness")
               for h in atlas_analysis.HYPOTHESES}
    undefined = [c for c in _cells(header) if generic.get(c, f"`{c}`") not in columns]
    assert len(_cells(header)) > 10 and undefined == []
    assert "`delay`: D = g / m, a ratio" in columns
