"""Damaged run directories get one line naming the file and what is wrong, never a traceback; Ctrl-C stops a
sweep where it is (the running ensemble interrupted and resumable); non-finite models are refused by lc."""

import json
import os
import signal

import pytest
import torch
from torch import nn

import lc
import sims
from sims import registry
from sims import sweep as sw
from sims.cli import main


@pytest.fixture
def interrupted(runs_dir, monkeypatch, interrupting):
    sim = registry.get("xor-cluster")
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", interrupting(sim, at_eval=3))
    with pytest.raises(Exception):
        sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", threads=1, lc=False, steps=40,
                 **dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0))
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", sim)
    [cut] = list((runs_dir / "xor-cluster").iterdir())
    return cut


DAMAGE = {
    "empty checkpoint": ("checkpoint.pt", b"", ["run", "--resume"], "checkpoint.pt cannot be read"),
    "truncated checkpoint": ("checkpoint.pt", None, ["run", "--resume"], "checkpoint.pt cannot be read"),
    "config not JSON": ("config.json", b"{not json", ["plot"], "config.json is not valid JSON"),
    "config without keys": ("config.json", b'{"sim": "xor-cluster"}', ["plot"], "config.json lacks"),
    "summary not JSON": ("summary.json", b"", ["run", "--resume"], "summary.json is not valid JSON"),
    "metrics line without step": ("metrics.jsonl", b'{"member": 0, "train_acc": 1}\n', ["plot"],
                                  "line 1 is not a metrics record"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_file_is_named_in_one_line(interrupted, case, capsys):
    name, content, command, message = DAMAGE[case]
    path = interrupted / name
    if content is None:  # cut the file in half, as a full disk or a kill mid-copy would
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    argv = command + [str(interrupted)] + (["--device", "cpu"] if command[0] == "run" else [])
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_ctrl_c_stops_a_sweep_and_the_rerun_resumes_it(tmp_path, monkeypatch):
    sim = registry.get("xor-cluster")
    count = [0]

    def build(members, env):
        task = sim.build(members, env)
        inner = task.evaluate

        def evaluate(model):
            count[0] += 1
            if count[0] == 3:  # the third evaluation of the whole sweep: inside the first ensemble
                os.kill(os.getpid(), signal.SIGINT)
            return inner(model)

        task.evaluate = evaluate
        return task

    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", registry.Simulation(**{**sim.__dict__, "build": build}))
    grid, base = {"width": [8, 16]}, dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0, lc=False, steps=30, n_evals=6)
    index = sw.sweep("xor-cluster", grid, preset="ci", base=base, out=tmp_path, device="cpu", threads=1)
    assert [g["status"] for g in index["groups"]] == ["interrupted", "pending"]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["status"] for p in saved["points"]] == ["interrupted", "pending"]
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", sim)
    again = sw.sweep("xor-cluster", grid, preset="ci", base=base, out=tmp_path, device="cpu", threads=1)
    assert [g["status"] for g in again["groups"]] == ["completed", "completed"]
    assert sims.load(again["groups"][0]["dir"]).steps[-1] == 30


def test_lc_refuses_non_finite_models():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        model[2].weight[0, 1] = float("inf")
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="2.weight"):
        lc.local_complexity(model, x, radius=0.1, n_dirs=2)
    with pytest.raises(ValueError, match="2.weight"):
        lc.Probe(points={"train": x}, radius=0.1, n_dirs=2)(model)
    with pytest.raises(ValueError, match="2.weight"):
        lc.exact2d.partition(model, torch.zeros(2), torch.eye(2), bounds=((-1, 1), (-1, 1)))
