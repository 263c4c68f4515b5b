"""Nothing from disk is unpickled: a payload planted in checkpoint.pt, cache/*.pt or snapshots/step-*.pt of a real
run directory never runs under `sims run --resume`, `sims plot` or the Python API's readers; each refuses the file
in one line naming it. Every .pt file a run writes loads with torch.load(weights_only=True)."""

import pytest
import torch

import sims
from sims import engine, registry, store
from sims.cache import Cache
from sims.cli import main

XOR = dict(n=40, d=400, mu_norm=6.0, width=16, n_test=100, lc_radius=2.0, lc=False, steps=40)
BENIGN = dict(n=12, d=40, steps=40, n_evals=8)


class Payload:
    """Unpickling this object writes `marker`: what a hostile .pt file in a shared run directory would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _plant(path, marker):
    """Replace `path` by a file that keeps the shape of a real one (a dict with a step and a model) and carries a
    payload; check that the payload is live (it runs when the file is unpickled)."""
    torch.save({"step": 1, "model": {"w": torch.zeros(2)}, "payload": Payload(marker)}, path)
    live = marker.with_name(marker.name + "-live")
    torch.save(Payload(live), live.with_suffix(".pt"))
    torch.load(live.with_suffix(".pt"), weights_only=False)  # the test's own control: the payload does run
    assert live.exists()


def _interrupted(runs_dir, monkeypatch, interrupting, name, over):
    sim = registry.get(name)
    monkeypatch.setitem(registry._REGISTRY, name, interrupting(sim, at_eval=3))
    with pytest.raises(engine.Interrupted):
        sims.run(name, preset="ci", seeds=2, device="cpu", threads=1, figures=False, **over)
    monkeypatch.setitem(registry._REGISTRY, name, sim)
    [cut] = list((runs_dir / name).iterdir())
    return cut


def _refused(argv, path, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "not loaded" in err and len(err.strip().splitlines()) == 1, err


def test_every_pt_file_of_a_run_loads_without_pickle(runs_dir):
    r = sims.run("benign-max-margin", preset="ci", seeds=2, device="cpu", threads=1, figures=False, **BENIGN)
    x = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", threads=1, figures=False, **XOR)
    files = sorted(r.dir.rglob("*.pt")) + sorted(x.dir.rglob("*.pt"))
    assert {"checkpoint.pt", "l2_max_margin.pt", "step-0.pt"} <= {p.name for p in files}
    for p in files:
        torch.load(p, weights_only=True)


def test_a_checkpoint_payload_does_not_run_on_resume(runs_dir, monkeypatch, interrupting, tmp_path, capsys):
    cut = _interrupted(runs_dir, monkeypatch, interrupting, "xor-cluster", XOR)
    marker = tmp_path / "ran-checkpoint"
    _plant(cut / "checkpoint.pt", marker)
    _refused(["run", "--resume", str(cut), "--device", "cpu", "--threads", "1", "--quiet"], cut / "checkpoint.pt",
             capsys)
    with pytest.raises(store.RunDirError, match="checkpoint.pt holds objects other than tensors"):
        sims.resume(cut, device="cpu", threads=1, figures=False)
    assert not marker.exists()


def test_a_cache_payload_does_not_run_on_resume(runs_dir, monkeypatch, interrupting, tmp_path, capsys):
    cut = _interrupted(runs_dir, monkeypatch, interrupting, "benign-max-margin", BENIGN)
    cached = cut / "cache" / "l2_max_margin.pt"
    assert cached.is_file()
    marker = tmp_path / "ran-cache"
    _plant(cached, marker)
    _refused(["run", "--resume", str(cut), "--device", "cpu", "--threads", "1", "--quiet"], cached, capsys)
    with pytest.raises(store.RunDirError, match="delete .* to have it computed again"):
        Cache(cut / "cache").get("l2_max_margin", lambda: pytest.fail("a stored value is not recomputed"))
    assert not marker.exists()


def test_a_snapshot_payload_does_not_run_on_plot_or_read(runs_dir, tmp_path, capsys):
    r = sims.run("xor-cluster", preset="ci", seeds=2, device="cpu", threads=1, figures=False, **XOR)
    assert main(["plot", str(r.dir)]) == 0  # a legitimate run draws its figures from its snapshots
    capsys.readouterr()
    steps = r.snapshots()
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == r.config.steps
    assert set(r.snapshot(steps[-1])["model"]) == set(r.simulation.build(r.members, engine.Env(
        torch.device("cpu"), torch.float64)).model.state_dict())
    marker = tmp_path / "ran-snapshot"
    path = r.dir / "snapshots" / f"step-{steps[-1]}.pt"
    _plant(path, marker)
    _refused(["plot", str(r.dir)], path, capsys)
    for reader in (sims.load(r.dir), sims.load(r.dir).view([1])):
        with pytest.raises(store.RunDirError, match="not loaded"):
            reader.snapshot(steps[-1])
    with pytest.raises(KeyError, match="no snapshot at step 41"):
        r.snapshot(41)
    assert not marker.exists()


def test_a_truncated_snapshot_is_named_in_one_line_on_plot(runs_dir, capsys):
    r = sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", threads=1, figures=False, **XOR)
    path = r.dir / "snapshots" / f"step-{r.snapshots()[-1]}.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    assert main(["plot", str(r.dir)]) == 2
    err = capsys.readouterr().err
    assert f"{path} cannot be read" in err and "damaged" in err and len(err.strip().splitlines()) == 1, err
