"""Grid simulations (the second kind): same registry, CLI and run directory; members equal single runs; resume."""

import json
import os
import signal

import numpy as np
import pytest

import sims
from sims import engine, registry
from sims.cli import main


def test_grid_run_directory_and_members(runs_dir):
    r = sims.run("svm-proliferation", preset="ci", seeds=3, device="cpu")
    assert r.simulation.kind == "grid" and r.summary["status"] == "completed"
    assert r.summary["points_done"] == r.summary["points"] == len(r.steps)
    d = r.metric("d")[:, 0]
    assert np.all(np.diff(d) > 0) and d[0] == r.config.n
    assert r.metric("sv_fraction").shape == (len(d), 3)
    assert (r.dir / "figures" / "proliferation.png").is_file()
    first = json.loads((r.dir / "metrics.jsonl").read_text().splitlines()[0])
    assert set(first) >= {"point", "member", "seed", "d", "sv_fraction"}
    one = sims.run("svm-proliferation", preset="ci", seeds=1, device="cpu", seed=2)
    np.testing.assert_array_equal(one.metric("sv_fraction")[:, 0], r.metric("sv_fraction")[:, 2])


def _interrupt_grid_at(monkeypatch, point: int) -> None:
    """Run svm-proliferation at ci (2 members) until SIGINT arrives at grid point `point`; the run is left cut."""
    sim = registry.get("svm-proliferation")

    def build(members, env):
        task = sim.build(members, env)
        inner = task.evaluate

        def evaluate(i, p):
            if i == point:
                os.kill(os.getpid(), signal.SIGINT)
            return inner(i, p)

        task.evaluate = evaluate
        return task

    monkeypatch.setitem(registry._REGISTRY, "svm-proliferation", registry.Simulation(
        **{**sim.__dict__, "build": build}))
    with pytest.raises(engine.Interrupted):
        sims.run("svm-proliferation", preset="ci", seeds=2, device="cpu", figures=False)
    monkeypatch.setitem(registry._REGISTRY, "svm-proliferation", sim)


def test_interrupted_grid_resumes_where_it_stopped(runs_dir, monkeypatch):
    full = sims.run("svm-proliferation", preset="ci", seeds=2, device="cpu", figures=False)
    _interrupt_grid_at(monkeypatch, point=2)
    [cut] = [d for d in (runs_dir / "svm-proliferation").iterdir() if d != full.dir]
    assert sims.load(cut).summary["status"] == "interrupted" and sims.load(cut).summary["points_done"] == 3
    resumed = sims.resume(cut, device="cpu", figures=False)
    assert resumed.summary["status"] == "completed"
    for name in ("d", "sv_fraction", "proliferation"):
        np.testing.assert_array_equal(resumed.metric(name), full.metric(name))


def test_grid_simulation_in_the_cli(capsys, tmp_path):
    assert main(["list"]) == 0
    assert "svm-proliferation" in capsys.readouterr().out
    code = main(["run", "svm-proliferation", "--preset", "ci", "--set", "ratio_max=0.5", "--out", str(tmp_path)])
    assert code == 2 and "ratio_max=0.5 is out of range" in capsys.readouterr().err
    assert main(["run", "svm-proliferation", "--preset", "ci", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "5 grid points" in out and "sv_fraction" in out and "proliferation.png" in out


def test_a_grid_run_edited_on_disk_is_not_resumed(runs_dir, monkeypatch, capsys):
    _interrupt_grid_at(monkeypatch, point=1)
    [cut] = list((runs_dir / "svm-proliferation").iterdir())
    meta = json.loads((cut / "config.json").read_text())
    meta["config"]["n"] = 8  # the points so far were computed with n = 16 (the ci preset)
    (cut / "config.json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()}
    assert main(["run", "--resume", str(cut), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "['n'] changed since summary.json was written" in err and len(err.strip().splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()} == before  # nothing computed or written
    meta["config"]["n"] = 16  # restored: the run resumes and completes
    (cut / "config.json").write_text(json.dumps(meta))
    assert sims.resume(cut, device="cpu", figures=False).summary["status"] == "completed"
