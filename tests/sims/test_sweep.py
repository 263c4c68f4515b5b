"""Sweeps: grid expansion, points grouped into ensembles, local and Dask (loopback) execution, results."""

import csv
import json
from pathlib import Path

import pytest

from sims import sweep as sw
from sims.cli import main
from sims.config import ConfigError

FAST = dict(lc="false", steps="10", n_evals="4", n="40", d="400", mu_norm="6", width="16", n_test="100")


def test_expand_and_plan():
    assert sw.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})[1] == {"a": 1, "b": "y"}
    assert len(sw.expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})) == 6
    points = sw.plan("xor-cluster", {"width": ["8", "16"], "seed": ["0", "1", "2"]}, preset="ci")
    assert [(p.settings["width"], p.settings["seed"]) for p in points][:2] == [("8", 0), ("8", 1)]
    groups = sw.group(points)
    assert [len(g.points) for g in groups] == [3, 3]  # seeds are members; the width is not member-wise
    assert [p.config().seed for p in groups[0].points] == [0, 1, 2]
    mixed = sw.group(sw.plan("xor-cluster", {"lr": [0.1, 0.2], "init_scale": [1e-4, 1e-3]}, preset="ci", seeds=2))
    assert [len(g.points) for g in mixed] == [8]  # lr and init scale are member-wise in xor-cluster: one ensemble
    spread = sw.group(sw.plan("xor-cluster", {"seed": ["0", "5"]}, preset="ci"))
    assert [len(g.points) for g in spread] == [2]  # any seeds form one ensemble, consecutive or not
    assert list(sw.group(points, cap=2)[0].points) == points[:2]
    with pytest.raises(ConfigError, match="Did you mean 'width'"):
        sw.plan("xor-cluster", {"widht": ["1"]}, preset="ci")
    with pytest.raises(ConfigError, match="out of range"):
        sw.plan("xor-cluster", {"lr": ["1", "-1"]}, preset="ci")
    with pytest.raises(ConfigError, match="expects key="):
        sw.parse_grid(["lr"])


def test_group_ids_are_stable_and_distinct():
    a = sw.group(sw.plan("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2))
    b = sw.group(sw.plan("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2))
    assert [g.id for g in a] == [g.id for g in b] and len({g.id for g in a}) == 2


def test_local_sweep_writes_index_and_results_and_resumes(tmp_path):
    index = sw.sweep("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2, base=FAST, out=tmp_path, device="cpu")
    assert [g["status"] for g in index["groups"]] == ["completed", "completed"]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert len(saved["points"]) == 4 and saved["executor"] == "local, sequential"
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [(r["width"], r["seed"]) for r in rows] == [("8", "0"), ("8", "1"), ("16", "0"), ("16", "1")]
    assert all(r["status"] == "completed" and float(r["train_acc"]) >= 0 for r in rows)
    again = sw.sweep("xor-cluster", {"width": [8, 16]}, preset="ci", seeds=2, base=FAST, out=tmp_path, device="cpu")
    assert all(g.get("reused") for g in again["groups"])
    with pytest.raises(ConfigError, match="different sweep"):
        sw.sweep("xor-cluster", {"width": [8, 32]}, preset="ci", seeds=2, base=FAST, out=tmp_path, device="cpu")


def test_dask_sweep_on_loopback(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    code = main(["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16", "--set", "lc=false",
                 "--set", "steps=10", "--set", "d=400", "--set", "n=40", "--set", "n_test=100", "--workers", "2", "--device", "cpu", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert "127.0.0.1" in saved["executor"]
    assert [g["status"] for g in saved["groups"]] == ["completed", "completed"]


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_sweep_killed_with_sigkill_is_resumed_by_the_same_command(tmp_path):
    """kill -9 once the first ensemble is recorded as completed: the plan is on disk, and rerunning the same
    command runs only what is missing (the completed ensemble's files are not touched)."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "sweep"
    argv = ["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16", "--device", "cpu", "--threads", "1",
            "--quiet", "--out", str(out)] + [a for kv in ("lc=false", "steps=3000", "n_evals=30", "n=40", "d=400",
                                                          "n_test=100") for a in ("--set", kv)]
    proc = subprocess.Popen([sys.executable, "-m", "sims", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, statuses = time.time() + 240, []
        while time.time() < deadline and proc.poll() is None:
            try:
                statuses = [g["status"] for g in json.loads((out / "sweep.json").read_text())["groups"]]
            except (OSError, ValueError):
                statuses = []
            if statuses and statuses[0] == "completed":
                break
            time.sleep(0.05)
        assert proc.poll() is None and statuses == ["completed", "pending"], (statuses, proc.poll())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    first = sorted((out / "runs").iterdir())
    done = [d for d in first if json.loads((d / "summary.json").read_text()).get("status") == "completed"]
    assert len(done) == 1 and (out / "lock").exists()  # the killed sweep left its lock behind
    kept = _tree(done[0])
    assert main(argv) == 0
    saved = json.loads((out / "sweep.json").read_text())
    assert [g["status"] for g in saved["groups"]] == ["completed", "completed"]
    assert [g.get("reused", False) for g in saved["groups"]] == [True, False]
    assert _tree(done[0]) == kept and not (out / "lock").exists()
    assert [r["status"] for r in csv.DictReader(open(out / "results.csv"))] == ["completed", "completed"]


def test_a_failed_sweep_prints_each_failed_points_error(tmp_path, monkeypatch, capsys):
    from sims import registry

    sim = registry.get("xor-cluster")

    def broken(members, env):
        raise RuntimeError("simulated crash in build")

    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", registry.Simulation(**{**sim.__dict__, "build": broken}))
    code = main(["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16", "--device", "cpu", "--threads",
                 "1", "--quiet", "--out", str(tmp_path)] + [a for kv in ("lc=false", "steps=10") for a in ("--set", kv)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "no run directory" in out and str(tmp_path / "runs") not in out  # no path to a directory that is not there
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all("RuntimeError: simulated crash in build" in ln for ln in lines)
    assert "width=8" in lines[0] and "width=16" in lines[1]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert all(p["error"] == "RuntimeError: simulated crash in build" for p in saved["points"])


def test_a_sweep_leaves_no_empty_figures_folder(tmp_path):
    sw.sweep("xor-cluster", {"width": [8]}, preset="ci", base=FAST, out=tmp_path, device="cpu", threads=1)
    [run] = (tmp_path / "runs").iterdir()
    assert not (run / "figures").exists()
    drawn = sw.sweep("xor-cluster", {"width": [16]}, preset="ci", base=FAST, out=tmp_path / "f", device="cpu",
                     threads=1, figures=True)
    assert list((Path(drawn["groups"][0]["dir"]) / "figures").glob("*.png"))
