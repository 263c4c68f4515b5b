"""Results as DataFrames: `sims.load(DIR).frame()` for a run, a sweep and an atlas directory, checked against the
arrays and files they come from."""

import dataclasses
import json

import numpy as np
import pytest

import sims
from sims import atlas, frames, registry
from sims.config import Members
from sims import sweep as sw

pd = pytest.importorskip("pandas", reason="pandas is a dependency of the package (pyproject.toml)")

FAST = dict(lc=False, steps=10, n_evals=4, n=40, d=400, mu_norm=6, width=16, n_test=100)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two members that differ in a member-wise field (lr) as well as the seed."""
    out = tmp_path_factory.mktemp("run")
    first = registry.members(registry.get("xor-cluster"), "ci", FAST, seeds=1)[0]
    members = Members([first, dataclasses.replace(first, seed=7, lr=0.5)])
    return sims.api.run_members("xor-cluster", "ci", members, device="cpu", out=out, figures=False, threads=1)


def test_run_frame_matches_the_metric_arrays(tiny_run):
    f = sims.load(tiny_run.dir).frame()
    assert list(f.columns) == ["step", "member", "seed", "lr", "metric", "value"]  # lr is the one field that varies
    assert f["seed"].dtype == np.int64 and sorted(f["seed"].unique()) == [0, 7]
    assert set(f["metric"]) == set(tiny_run.metric_names)
    acc = f[f.metric == "test_acc"].pivot(index="step", columns="member", values="value")
    np.testing.assert_array_equal(acc.to_numpy(), tiny_run.metric("test_acc"))
    assert list(acc.index) == list(tiny_run.steps)
    assert f.groupby("member")["lr"].first().tolist() == [tiny_run.members[0].lr, 0.5]


def test_run_frame_fields_and_last(tiny_run):
    every = tiny_run.frame(fields="all")
    assert {"width", "n", "d", "lr", "init_scale"} <= set(every.columns) and "seed" in every.columns
    last = tiny_run.frame(last=True)
    assert set(last["step"]) == {tiny_run.steps[-1]}
    assert len(last) == tiny_run.n_members * len(tiny_run.metric_names)
    assert list(tiny_run.frame(fields=["width"]).columns)[3] == "width"
    with pytest.raises(ValueError, match="unknown config field.*widht"):
        tiny_run.frame(fields=["widht"])
    with pytest.raises(ValueError, match="'varying', 'all' or a list"):
        tiny_run.frame(fields="some")


def test_sweep_frame_has_typed_swept_values(tmp_path):
    base = {k: v for k, v in FAST.items() if k != "width"}
    index = sw.sweep("xor-cluster", {"width": ["8", "16"], "lr": ["0.5", "1"]}, preset="ci", seeds=2, base=base,
                     out=tmp_path, device="cpu", threads=1)
    loaded = sims.load(tmp_path)
    assert isinstance(loaded, frames.SweepResults) and loaded.swept == ["width", "lr"]
    f = loaded.frame(last=True)
    assert {"run", "step", "member", "seed", "width", "lr", "metric", "value"} == set(f.columns)
    assert f["seed"].dtype == np.int64 and f["width"].dtype == np.int64 and f["lr"].dtype == np.float64
    points = {(int(p["width"]), float(p["lr"]), p["seed"]) for p in index["points"]}
    assert set(f[["width", "lr", "seed"]].itertuples(index=False, name=None)) == points
    final = f[f.metric == "train_acc"].set_index(["width", "lr", "seed"])["value"]
    for p in index["points"]:  # the frame's final values are sweep.json's
        assert final[(int(p["width"]), float(p["lr"]), p["seed"])] == pytest.approx(p["train_acc"])
    assert len(f) == len(index["points"]) * f["metric"].nunique()


def test_atlas_frame_is_its_table(tmp_path):
    entry = atlas.Entry("xor-cluster", "XOR clusters", seeds=2, overrides=tuple(FAST.items()))
    atlas.atlas("ci", tmp_path, entries=[entry], device="cpu", threads=1)
    loaded = sims.load(tmp_path)
    assert isinstance(loaded, frames.AtlasResults)
    f = loaded.frame()
    table = json.loads((tmp_path / "atlas.json").read_text())["table"]
    assert list(f["setting"]) == ["xor-cluster"] and list(f.columns) == list(table[0])
    assert f.iloc[0]["transition_step"] == pytest.approx(table[0]["transition_step"], nan_ok=True)


def test_load_still_names_a_directory_that_holds_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        sims.load(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({"sim": "xor-cluster", "grid": {}, "groups": []}))
    with pytest.raises(sims.store.RunDirError, match="no finished run"):
        sims.load(tmp_path).frame()
