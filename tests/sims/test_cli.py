"""The `sims` command: listing, bad input (exit 2, nothing written), runs, plots, reproduce."""

import json
import re
from pathlib import Path

import pytest
import torch

from sims import registry
from sims.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_and_show(capsys):
    code, out, _ = _run(["list"], capsys)
    assert code == 0 and "xor-cluster" in out
    code, out, _ = _run(["show", "xor-cluster"], capsys)
    assert code == 0 and "noise_rate" in out and "probability" in out and "presets:" in out


BAD = [
    (["run", "xor-clustr"], "Did you mean 'xor-cluster'"),
    (["run", "xor-cluster", "--set", "lrr=0.1"], "unknown config key 'lrr'. Did you mean 'lr'"),
    (["run", "xor-cluster", "--set", "lr=-1"], "lr=-1.0 is out of range"),
    (["run", "xor-cluster", "--set", "lr=nan"], "lr=nan is not finite"),
    (["run", "xor-cluster", "--set", "width=0"], "width=0 is out of range"),
    (["run", "xor-cluster", "--set", "noise_rate=1.5"], "noise_rate=1.5 is out of range: valid [0.0, 0.5)"),
    (["run", "xor-cluster", "--set", "n=ten"], "n='ten' cannot be read as int"),
    (["run", "xor-cluster", "--set", "optimizer=lbfgs"], "optimizer='lbfgs' is not valid: one of 'sgd', 'adamw'"),
    (["run", "xor-cluster", "--set", "lr"], "--set expects key=value"),
    (["run", "xor-cluster", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "xor-cluster", "--seeds", "0"], "seeds must be an integer >= 1"),
    (["run", "xor-cluster", "--device", "tpu"], "device must be"),
    (["run"], "give a simulation NAME"),
    (["reproduce", "xu2042"], "unknown paper key 'xu2042'"),
]


@pytest.mark.parametrize("argv,message", BAD)
def test_bad_input_exit_2_and_nothing_written(argv, message, capsys, tmp_path):
    out = tmp_path / "runs"
    extra = ["--out", str(out)] if argv[0] in ("run", "reproduce") and len(argv) > 1 else []
    code, _, err = _run(argv + extra, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one message, no traceback
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(capsys, tmp_path):
    code, _, err = _run(["run", "xor-cluster", "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "CUDA is not available" in err and not (tmp_path / "r").exists()


def test_run_plot_and_resume_cli(capsys, tmp_path):
    out = tmp_path / "runs"
    code, stdout, _ = _run(["run", "xor-cluster", "--preset", "ci", "--set", "lc=false", "--seeds", "2", "--set", "d=400",
                            "--set", "n=40", "--set", "n_test=100",
                            "--dtype", "float64", "--device", "cpu", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    run_dir = Path(re.search(r"run directory: (.+)", stdout).group(1))
    assert "test_acc" in stdout and "figure:" in stdout
    (run_dir / "figures" / "accuracy.png").unlink()
    code, stdout, _ = _run(["plot", str(run_dir)], capsys)
    assert code == 0 and (run_dir / "figures" / "accuracy.png").is_file()
    code, _, _ = _run(["run", "--resume", str(run_dir), "--quiet", "--device", "cpu"], capsys)
    assert code == 0  # resuming a finished run is a no-op that ends completed
    code, _, err = _run(["run", "--resume", str(run_dir), "--set", "lr=1"], capsys)
    assert code == 2 and "--resume continues a run" in err
    code, _, err = _run(["plot", str(tmp_path)], capsys)
    assert code == 2 and "not a run directory" in err


def test_reproduce_writes_report(capsys, tmp_path):
    code, stdout, _ = _run(["reproduce", "xu2024", "--preset", "ci", "--out", str(tmp_path / "rep"), "--quiet",
                            "--device", "cpu"], capsys)
    assert code == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    ids = [r["id"] for r in report["rows"]]
    assert "first-step-fits-noisy-labels" in ids
    assert all(r["verdict"] in ("PASS", "FAIL", "n/a", "reported") for r in report["rows"])
    assert "mechanics only" in (tmp_path / "rep" / "report.md").read_text().splitlines()[2]
    assert all(r["measured"] is not None for r in report["rows"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| claim |" in md and "first-step-fits-noisy-labels" in md
    assert list((tmp_path / "rep" / "figures").glob("*.png"))


def test_readme_names_every_simulation():
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in registry.names() if f"`{n}`" not in readme]
    assert not missing, f"README.md does not name {missing}"


def test_duplicate_registration_is_an_error():
    sim = registry.get("xor-cluster")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("xor-cluster", sim.config_cls, presets=sim.presets, cpu_runtime="1 s")(sim.build)


def test_list_into_a_closed_pipe_is_quiet():
    """`sims list | head -1`: the reader closing the pipe is not an error (no message, exit 0)."""
    import subprocess
    import sys

    proc = subprocess.run(f"{sys.executable} -m sims list | head -c 10", shell=True, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "" and len(proc.stdout) == 10
