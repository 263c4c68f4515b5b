"""Results that exist are never lost or corrupted: resume of ended runs, reproduce pages, sweep directories,
non-finite numbers in JSON, the run lock, and configs edited after a checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import sims
from sims import api, registry, store
from sims.claims.runner import reproduce
from sims.cli import main
from sims.config import ConfigError

TINY = dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0)
FAST = dict(TINY, lc=False, dtype="float64")


def _files(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", ["xor-cluster", "svm-proliferation"])
def test_resuming_an_ended_run_changes_nothing(runs_dir, name, capsys):
    r = sims.run(name, preset="ci", seeds=2, device="cpu", **(FAST if name == "xor-cluster" else {}))
    before = _files(r.dir)
    again = sims.resume(r.dir, device="cpu")
    assert again.summary == r.summary and _files(r.dir) == before
    assert main(["run", "--resume", str(r.dir), "--device", "cpu", "--quiet"]) == 0
    assert "left as it is" in capsys.readouterr().out and _files(r.dir) == before


def _page(tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    page = papers / "xu2024.md"
    page.write_text("# page\n\n<!-- claims:begin -->\nthe measured table\n<!-- claims:end -->\n")
    return papers, page


def test_a_usage_error_in_reproduce_writes_nothing(tmp_path, capsys):
    papers, page = _page(tmp_path)
    before = page.read_text()
    code = main(["reproduce", "xu2024", "--preset", "cii", "--update-papers", str(papers), "--out",
                 str(tmp_path / "rep")])
    assert code == 2 and "unknown preset 'cii'" in capsys.readouterr().err
    assert page.read_text() == before and not (tmp_path / "rep").exists()


def test_a_report_whose_runs_failed_never_overwrites_a_page(tmp_path, monkeypatch):
    papers, page = _page(tmp_path)
    before = page.read_text()
    sim = registry.get("xor-cluster")

    def broken(members, env):
        raise RuntimeError("simulated crash in build")

    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", registry.Simulation(**{**sim.__dict__, "build": broken}))
    report = reproduce("xu2024", preset="ci", out=tmp_path / "rep", device="cpu", papers_dir=papers,
                       log=lambda m: None)
    assert report["run_failures"] and all(r["verdict"] == "RUN FAILED" for r in report["rows"])
    assert page.read_text() == before


def test_nan_is_written_as_null_also_after_interrupt_and_resume(runs_dir, monkeypatch, interrupting, strict_json):
    over = dict(FAST, steps=60, n_evals=12, checkpoint_every=2)
    sim = registry.get("xor-cluster")
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", interrupting(sim, at_eval=4))
    with pytest.raises(Exception):
        sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", threads=1, **dict(over, lr=0.2, seed=3))
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", sim)
    [cut] = list((runs_dir / "xor-cluster").iterdir())
    recs = strict_json(cut / "metrics.jsonl")
    assert recs and all("kkt_residual" in r for r in recs)
    assert any(r["kkt_residual"] is None for r in recs)  # NaN before the data are fitted: null, not NaN
    sims.resume(cut, device="cpu", threads=1)
    assert len(strict_json(cut / "metrics.jsonl")) > len(recs)
    json.loads((cut / "summary.json").read_text(), parse_constant=lambda t: pytest.fail(f"token {t}"))
    dead = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", threads=1, **dict(over, lr=1e38,
                                                                                         dtype="float32"))
    assert dead.summary["status"] == "diverged"  # the weights overflow (the loss stays finite: 0)
    assert all(r["train_loss"] is None for r in strict_json(dead.dir / "metrics.jsonl")[2:])


def _interrupted_run(runs_dir, monkeypatch, interrupting, **over):
    sim = registry.get("xor-cluster")
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", interrupting(sim, at_eval=3))
    with pytest.raises(Exception):
        sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", threads=1, **dict(FAST, **over))
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", sim)
    [cut] = list((runs_dir / "xor-cluster").iterdir())
    return cut


def test_two_processes_never_train_in_one_run_directory(runs_dir, monkeypatch, interrupting):
    cut = _interrupted_run(runs_dir, monkeypatch, interrupting, steps=400_000, n_evals=200, checkpoint_every=1)
    cmd = [sys.executable, "-m", "sims", "run", "--resume", str(cut), "--device", "cpu", "--quiet", "--threads", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (cut / "lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (cut / "lock").exists(), "the resumed run never took the lock"
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"in use by process {first.pid}" in second.stderr
        with pytest.raises(store.RunDirError, match="in use"):
            sims.resume(cut, device="cpu")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (cut / "lock").exists()  # SIGKILL left a stale lock ...
    with store.RunLock(cut):  # ... which the next process takes over
        assert json.loads((cut / "lock").read_text())["pid"] == os.getpid()
    assert not (cut / "lock").exists()
    steps = [(r["step"], r["member"]) for r in store.read_metrics(cut / "metrics.jsonl")]
    assert len(steps) == len(set(steps))  # no record written twice


def test_a_config_edited_after_the_checkpoint_is_refused(runs_dir, monkeypatch, interrupting):
    cut = _interrupted_run(runs_dir, monkeypatch, interrupting, steps=60, n_evals=12, checkpoint_every=1)
    meta = json.loads((cut / "config.json").read_text())
    status = json.loads((cut / "summary.json").read_text())["status"]
    for field, value in (("seed", 7), ("lr", 0.5)):
        edited = json.loads(json.dumps(meta))
        edited["config"][field] = value
        edited["members"] = [{"seed": edited["config"]["seed"]}]
        (cut / "config.json").write_text(json.dumps(edited))
        with pytest.raises(ConfigError, match=f"\\['{field}'\\] changed"):
            api.resume(cut, device="cpu")
        assert json.loads((cut / "summary.json").read_text())["status"] == status
    (cut / "config.json").write_text(json.dumps(meta))
    assert api.resume(cut, device="cpu", threads=1).summary["status"] == "completed"


def _steps_and_losses(path, strict_json):
    return [(r["step"], r["member"], r["train_loss"]) for r in strict_json(path)]


@pytest.mark.parametrize("where", ["set-up", "first step"])
def test_ctrl_c_before_the_first_checkpoint_leaves_a_resumable_run(runs_dir, monkeypatch, strict_json, where):
    """Ctrl-C that lands before the engine's signal handler (set-up) or bypasses it (a KeyboardInterrupt raised
    in the first step, after step 0's metrics are written): an 'interrupted' run, the lock released, and a resume
    that trains from step 0 to the same records as an uninterrupted run, none twice."""
    from sims import engine

    over = dict(FAST, steps=40, n_evals=8)
    ref = sims.run("xor-cluster", preset="ci", device="cpu", threads=1, out=runs_dir / "ref", **over)
    name = "_new_state" if where == "set-up" else "_train_step"
    real = getattr(engine, name)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, name, ctrl_c)
    with pytest.raises(engine.Interrupted, match="before the first checkpoint"):
        sims.run("xor-cluster", preset="ci", device="cpu", threads=1, out=runs_dir / "cut", **over)
    monkeypatch.setattr(engine, name, real)
    [cut] = list((runs_dir / "cut" / "xor-cluster").iterdir())
    assert json.loads((cut / "summary.json").read_text())["status"] == "interrupted"
    assert not (cut / "checkpoint.pt").exists() and not (cut / "lock").exists()
    if where == "first step":
        assert _steps_and_losses(cut / "metrics.jsonl", strict_json)[0][0] == 0
    done = sims.resume(cut, device="cpu", threads=1)
    assert done.summary["status"] == "completed"
    assert _steps_and_losses(cut / "metrics.jsonl", strict_json) == _steps_and_losses(ref.dir / "metrics.jsonl",
                                                                                      strict_json)


def test_ctrl_c_early_is_one_line_and_exit_1(runs_dir, monkeypatch, capsys):
    from sims import engine

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_new_state", ctrl_c)
    code = main(["run", "xor-cluster", "--preset", "ci", "--device", "cpu", "--threads", "1", "--quiet",
                 "--out", str(runs_dir)] + [a for k, v in FAST.items() for a in ("--set", f"{k}={v}")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("sims: interrupted: stopped by Ctrl-C")


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_sweep_run_again_into_its_directory_keeps_every_result(tmp_path, capsys):
    """The same sweep into its own directory reuses every completed ensemble (no file under runs/ changes, nor
    results.csv); a different sweep into it is refused with one line and changes nothing."""
    out = tmp_path / "sweep"
    sets = [a for k, v in FAST.items() if k != "width" for a in ("--set", f"{k}={v}")]
    base = ["sweep", "xor-cluster", "--preset", "ci", "--device", "cpu", "--threads", "1", "--quiet",
            "--out", str(out)] + sets
    assert main(base + ["--grid", "width=8,16"]) == 0
    runs, csv = _tree(out / "runs"), (out / "results.csv").read_bytes()
    assert runs
    assert main(base + ["--grid", "width=8,16"]) == 0
    assert _tree(out / "runs") == runs and (out / "results.csv").read_bytes() == csv
    capsys.readouterr()
    assert main(base + ["--grid", "width=8,32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a different sweep" in err[0]
    assert _tree(out / "runs") == runs and (out / "results.csv").read_bytes() == csv
