"""The engine: eval schedule, ensembles equal single runs, divergence, resume, killed runs."""

import dataclasses
import json
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import sims
from sims import engine, registry, store
from sims.config import Members, TrainConfig
from sims.nn import EnsembleLinear, EnsembleSequential, make_generators

TINY = dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0)  # the mechanics, not the phenomenon: a small xor-cluster
CI_FAST = dict(TINY, lc=False, dtype="float64")


@given(steps=st.integers(0, 10**6), n_evals=st.integers(2, 300))
def test_eval_schedule_properties(steps, n_evals):
    s = engine.eval_schedule(steps, n_evals)
    assert s == sorted(set(s))
    assert s[0] == 0 and s[-1] == steps
    assert len(s) <= n_evals
    assert all(isinstance(v, int) for v in s)


def test_eval_schedule_is_log_and_linear():
    s = engine.eval_schedule(10_000, 40)
    assert {1, 10_000}.issubset(s)
    assert sum(v < 100 for v in s) >= 8  # log part: dense at the start
    assert sum(v > 5000 for v in s) >= 9  # linear part: covers the end
    with pytest.raises(ValueError):
        engine.eval_schedule(10, 1)


@pytest.mark.parametrize("batch_size", [0, 7])
def test_ensemble_members_equal_single_runs(runs_dir, batch_size):
    over = dict(CI_FAST, steps=25, batch_size=batch_size, seed=5)
    big = sims.run("xor-cluster", preset="ci", seeds=3, device="cpu", figures=False, **over)
    assert big.summary["status"] == "completed"
    for e in range(3):
        one = sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", figures=False, **dict(over, seed=5 + e))
        np.testing.assert_array_equal(one.steps, big.steps)
        for name in ("train_loss", "test_acc", "weight_norm"):
            np.testing.assert_allclose(big.metric(name)[:, e], one.metric(name)[:, 0], rtol=1e-9, atol=1e-12)


def test_run_api_and_run_directory(runs_dir):
    r = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", **CI_FAST)
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoint.pt"):
        assert (r.dir / name).is_file()
    assert (r.dir / "figures" / "accuracy.png").is_file()
    meta = json.loads((r.dir / "config.json").read_text())
    assert meta["config"]["n"] == r.config.n and meta["environment"]["torch"] == torch.__version__
    assert r.metric("train_acc").shape == (len(r.steps), 2)
    assert r.summary["status"] == "completed" and r.summary["member_status"] == ["completed"] * 2
    again = sims.load(r.dir)
    np.testing.assert_array_equal(again.metric("test_loss"), r.metric("test_loss"))
    with pytest.raises(KeyError, match="no metric"):
        r.metric("nope")


@pytest.mark.parametrize("batch_size", [0, 5])
def test_resume_equals_uninterrupted(runs_dir, monkeypatch, interrupting, batch_size):
    over = dict(CI_FAST, steps=40, batch_size=batch_size, optimizer="adamw", lr=0.01, checkpoint_every=3)
    full = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", figures=False, **over)
    sim = registry.get("xor-cluster")
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", interrupting(sim, at_eval=6))
    with pytest.raises(engine.Interrupted):
        sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", figures=False, **over)
    monkeypatch.setitem(registry._REGISTRY, "xor-cluster", sim)
    [cut] = [d for d in (runs_dir / "xor-cluster").iterdir() if d != full.dir]
    assert sims.load(cut).summary["status"] == "interrupted"
    assert sims.load(cut).steps[-1] < 40
    resumed = sims.resume(cut, device="cpu", figures=False)
    assert resumed.summary["status"] == "completed"
    np.testing.assert_array_equal(resumed.steps, full.steps)
    for name in resumed.metric_names:
        np.testing.assert_array_equal(resumed.metric(name), full.metric(name))


def test_sigkilled_run_stays_readable(tmp_path):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "sims", "run", "xor-cluster", "--preset", "ci", "--device", "cpu", "--quiet",
           "--out", str(out), "--set", "steps=2000000", "--set", "n_evals=400000", "--set", "lc=false",
           *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        metrics = None
        while time.time() < deadline:
            found = list(out.glob("xor-cluster/*/metrics.jsonl"))
            if found and found[0].stat().st_size > 20_000:
                metrics = found[0]
                break
            time.sleep(0.05)
        assert metrics is not None, "the run wrote no metrics in 60 s"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the kill may or may not have torn the last line
        run = sims.load(metrics.parent)
    assert len(run.steps) > 5 and np.isfinite(run.metric("train_loss")).all()
    assert run.summary["status"] == "running"
    with open(metrics, "a") as f:  # a torn last line, as SIGKILL mid-write leaves it
        f.write('{"step": 99999999, "member": 0, "train_lo')
    with pytest.warns(UserWarning, match="skipping unreadable line"):
        again = sims.load(metrics.parent)
    assert again.steps[-1] == run.steps[-1]


@dataclasses.dataclass(frozen=True)
class _ToyConfig(TrainConfig):
    pass


def _toy_task(scales, stop=None):
    """Least squares y = x w per member; member e's data scaled by scales[e] (large scale: GD diverges)."""
    E = len(scales)
    model = EnsembleSequential(E, EnsembleLinear(3, 1, make_generators(range(E)), bias=False, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(E, 20, 3, generator=g, dtype=torch.float64) * torch.tensor(scales, dtype=torch.float64).view(E, 1, 1)
    y = x @ torch.ones(3, 1, dtype=torch.float64)

    def loss(out, yy):
        return ((out - yy) ** 2).mean(dim=(1, 2))

    def evaluate(m):
        return dict(train_loss=loss(m(x), y))

    return engine.Task(model=model, x=x, y=y, loss=loss, evaluate=evaluate, stop=stop)


def test_divergent_member_is_frozen_and_others_go_on(tmp_path):
    cfg = _ToyConfig(steps=200, lr=0.1, n_evals=20)
    messages = []
    summary = engine.train(_toy_task([1.0, 30.0]), Members.from_seeds(cfg, 2), tmp_path, log=messages.append)
    assert summary["status"] == "completed"
    assert summary["member_status"] == ["completed", "diverged"]
    assert summary["ended"][1]["status"] == "diverged" and "diverged" in messages[0]
    recs = store.read_metrics(tmp_path / "metrics.jsonl")
    member0 = [r["train_loss"] for r in recs if r["member"] == 0]
    assert member0[-1] < 1e-6  # the healthy member converged
    (tmp_path / "alone").mkdir()
    alone = engine.train(_toy_task([1.0]), Members.from_seeds(cfg, 1), tmp_path / "alone")
    assert alone["final"]["train_loss"][0] == pytest.approx(summary["final"]["train_loss"][0], rel=1e-12)
    (tmp_path / "all").mkdir()
    everything = engine.train(_toy_task([30.0, 40.0]), Members.from_seeds(cfg, 2), tmp_path / "all")
    assert everything["status"] == "diverged"


def test_stop_criterion_freezes_members(tmp_path):
    cfg = _ToyConfig(steps=500, lr=0.05, n_evals=100)
    summary = engine.train(_toy_task([1.0, 0.3], stop=lambda m: m["train_loss"] < 1e-3),
                           Members.from_seeds(cfg, 2), tmp_path)
    assert summary["member_status"] == ["stopped", "stopped"]
    assert summary["step"] < 500
    assert all(v < 1e-3 for v in summary["final"]["train_loss"])


def test_thread_watch_drops_to_one_thread_when_steps_slow_down(monkeypatch):
    """Steps 3x slower than the fastest stretch (a competing process took a core): one thread from then on;
    steady or merely noisy steps (1.5x) keep the threads; short stretches are not judged."""
    from threadpoolctl import threadpool_limits

    from sims.threads import ThreadWatch

    clock = [0.0]
    monkeypatch.setattr("sims.engine.time.perf_counter", lambda: clock[0])
    before = torch.get_num_threads()
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            torch.set_num_threads(2)
            watch = ThreadWatch(torch.device("cpu"), factor=2.5, min_steps=50)
            step = 0
            for per_step, n, dropped in ((1e-3, 100, False), (1.5e-3, 100, False), (1e-2, 10, False),
                                         (3e-3, 100, True)):
                watch.restart(step)
                clock[0] += per_step * n
                step += n
                assert watch.check(step) is dropped
            assert torch.get_num_threads() == 1 and "from 2 threads to 1 at step 310" in watch.note
            assert watch.check(step + 1000) is False  # one way: never judged again
        assert not ThreadWatch(torch.device("meta")).on  # only CPU runs are watched
    finally:
        torch.set_num_threads(before)


@given(steps=st.integers(0, 10**6), n_evals=st.integers(2, 300), k=st.integers(-1, 12))
def test_snapshot_policy_properties(steps, n_evals, k):
    evals = engine.eval_schedule(steps, n_evals)
    s = engine.snapshot_steps(steps, n_evals, k)
    assert list(s) == sorted(set(s)) and set(s) <= set(evals)  # always on eval steps
    if k == 0:
        assert s == ()
    elif k == -1:
        assert set(s) == {e for e in evals if e == 0 or e >= steps / 100}
    else:
        assert {0, steps} <= set(s) and len(s) <= 2 * k + 2
        assert 1 in s or 1 not in evals  # the first step (log-spaced from 1) is kept when it is evaluated


def test_snapshot_policy_refuses_other_values():
    with pytest.raises(ValueError, match="snapshots must be -1"):
        engine.snapshot_steps(100, 10, -2)


def test_runs_keep_and_read_the_policys_snapshots(runs_dir):
    r = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", figures=False, threads=1, steps=30, snapshots=4,
                 **CI_FAST)
    assert r.snapshots() == list(engine.snapshot_steps(30, r.config.n_evals, 4))
    view = r.view([1])
    assert view.snapshots() == r.snapshots()
    last = view.snapshot(30)
    assert last["step"] == 30
    for k, v in r.simulation.build(r.members, engine.Env(torch.device("cpu"), torch.float64)).model.state_dict().items():
        assert last["model"][k].shape == v.shape  # every member of the run, also through a view
    none = sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", figures=False, threads=1, steps=30, snapshots=0,
                    **CI_FAST)
    assert none.snapshots() == [] and not (none.dir / "snapshots").exists()


def _on(device, task):
    task.model.to(device)
    task.x, task.y = task.x.to(device), task.y.to(device)
    return task


def _tensors(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


@pytest.mark.parametrize("batch_size", [0, 5])
def test_the_loop_state_stays_on_the_tasks_device(tmp_path, batch_size):
    """The loop's device transfers on the `meta` device (tensors without data): a state tensor or batch index
    left on the CPU, a checkpoint not moved to the device on resume, or a data-dependent write (a host-device sync
    on a GPU) in the per-step path raises or shows up here. The per-member batch generators stay on the CPU."""
    meta = torch.device("meta")
    cfg = _ToyConfig(steps=6, lr=0.05, n_evals=3, batch_size=batch_size, optimizer="adamw")
    members = Members.from_seeds(cfg, 2)
    engine.train(_toy_task([1.0, 2.0]), members, tmp_path, quiet=True)  # a real checkpoint, written on the CPU
    ckpt = store.load_checkpoint(tmp_path / "checkpoint.pt")
    frozen_member = dict(status="stopped", step=3, why="reached the stopping criterion")
    ckpt.update(step=3, active=torch.tensor([True, False]), ended=[None, frozen_member],
                frozen={k: v.clone() for k, v in ckpt["model"].items()})
    for resume in (None, ckpt):
        task = _on(meta, _toy_task([1.0, 2.0]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # load_state_dict into meta parameters copies nothing (and says so)
            state = engine._new_state(task, members, resume)
        xb, yb = engine._batch(task, cfg, state)
        assert xb.device == yb.device == meta and xb.shape[:2] == (2, batch_size or 20)
        for _ in range(2):
            engine._train_step(task, cfg, state)
        assert state.step == (3 if resume else 0) + 2 and state.n_active == (1 if resume else 2)
        on_device = [state.active, *state.frozen.values(), *state.safe.values(), *task.model.parameters(),
                     *(t for t in _tensors(state.opt.state_dict()["state"]) if t.dim() > 0)]
        assert all(t.device == meta for t in on_device)
        assert all(g.device.type == "cpu" for g in state.batch_gens)
