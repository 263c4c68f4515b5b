"""Sweeps: grid expansion, seeds folded into ensembles, local and Dask (loopback) execution."""

import json

import pytest

from sims import sweep as sw
from sims.cli import main
from sims.config import ConfigError

FAST = dict(lc="false", steps="10", n_evals="4")


def test_expand_and_plan():
    assert sw.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})[1] == {"a": 1, "b": "y"}
    assert len(sw.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})) == 6
    specs = sw.plan("xor-cluster", {"lr": ["0.5", "1"], "seed": ["0", "1", "2"]}, preset="ci")
    assert [(s["overrides"]["lr"], s["overrides"]["seed"], s["seeds"]) for s in specs] == [("0.5", 0, 3), ("1", 0, 3)]
    specs = sw.plan("xor-cluster", {"seed": ["0", "5"]}, preset="ci")
    assert [s["seeds"] for s in specs] == [1, 1]  # not consecutive: separate runs
    with pytest.raises(ConfigError, match="Did you mean 'width'"):
        sw.plan("xor-cluster", {"widht": ["1"]}, preset="ci")
    with pytest.raises(ConfigError, match="out of range"):
        sw.plan("xor-cluster", {"lr": ["1", "-1"]}, preset="ci")
    with pytest.raises(ConfigError, match="expects key="):
        sw.parse_grid(["lr"])


def test_local_sweep(tmp_path):
    index = sw.sweep("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2, base=FAST, out=tmp_path, device="cpu")
    assert [p["status"] for p in index["points"]] == ["completed", "completed"]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert len(saved["points"]) == 2 and saved["executor"] == "local, sequential"


def test_dask_sweep_on_loopback(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    code = main(["sweep", "xor-cluster", "--preset", "ci", "--grid", "lr=0.5,1", "--set", "lc=false",
                 "--set", "steps=10", "--workers", "2", "--device", "cpu", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert "127.0.0.1" in saved["executor"]
    assert [p["status"] for p in saved["points"]] == ["completed", "completed"]
