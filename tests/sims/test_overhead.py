"""What a command does besides training: figures only when asked and only when stale, no needless imports."""

import os
import re
import subprocess
import sys
from pathlib import Path

from sims.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--preset", "ci", "--set", "lc=false", "--set", "d=400", "--set", "n=40", "--set", "n_test=100",
         "--device", "cpu", "--threads", "1", "--quiet"]


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _mtimes(run_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (run_dir / "figures").iterdir()}


def test_no_figures_then_plot_draws_once(capsys, tmp_path):
    code, stdout, _ = _run(["run", "xor-cluster", *SMALL, "--no-figures", "--out", str(tmp_path / "runs")], capsys)
    assert code == 0 and "figure:" not in stdout
    run_dir = Path(re.search(r"run directory: (.+)", stdout).group(1))
    assert not list(run_dir.glob("figures/*.png"))

    code, stdout, _ = _run(["plot", str(run_dir)], capsys)
    assert code == 0 and (run_dir / "figures" / "accuracy.png").is_file()
    drawn = _mtimes(run_dir)

    code, again, err = _run(["plot", str(run_dir)], capsys)  # nothing changed: left as it is, same files listed
    assert code == 0 and "left as they are" in err and again == stdout and _mtimes(run_dir) == drawn

    code, _, _ = _run(["run", "--resume", str(run_dir), "--device", "cpu", "--quiet"], capsys)
    assert code == 0 and _mtimes(run_dir) == drawn  # resuming a completed run redraws nothing

    code, stdout, err = _run(["plot", str(run_dir), "--format", "svg"], capsys)  # another format: drawn
    assert code == 0 and "left as they are" not in err and (run_dir / "figures" / "accuracy.svg").is_file()

    code, _, err = _run(["plot", str(run_dir), "--format", "svg", "--redraw"], capsys)
    assert code == 0 and "left as they are" not in err

    code, _, err = _run(["plot", str(run_dir), "--format", "svg"], capsys)
    assert code == 0 and "left as they are" in err
    later = (run_dir / "figures" / ".drawn.json").stat().st_mtime + 10
    os.utime(run_dir / "metrics.jsonl", (later, later))  # results newer than the figures: drawn again
    code, _, err = _run(["plot", str(run_dir), "--format", "svg"], capsys)
    assert code == 0 and "left as they are" not in err

    earlier = (run_dir / "figures" / ".drawn.json").stat().st_mtime - 100
    os.utime(run_dir / "metrics.jsonl", (earlier, earlier))
    code, _, err = _run(["plot", str(run_dir), "--format", "svg"], capsys)
    assert code == 0 and "left as they are" in err
    snapshot = sorted((run_dir / "snapshots").glob("step-*.pt"))[-1]  # rewritten in place: the folder's time stays
    later = (run_dir / "figures" / ".drawn.json").stat().st_mtime + 10
    os.utime(snapshot, (later, later))
    code, _, err = _run(["plot", str(run_dir), "--format", "svg"], capsys)
    assert code == 0 and "left as they are" not in err


def test_run_imports_only_its_setting(tmp_path):
    """A run into a root that already holds runs checks the folder names against the shipped index instead of
    importing every setting module (the image settings pull in scipy.stats, ~1 s)."""
    (tmp_path / "runs" / "dmf-completion").mkdir(parents=True)
    code = ("import sys; from sims.cli import main; "
            f"code = main(['run', 'xor-cluster', *{SMALL!r}, '--no-figures', '--out', {str(tmp_path / 'runs')!r}]); "
            "print(code, 'scipy.stats' in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith('sims.settings.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    code, stats, modules = out.stdout.strip().splitlines()[-1].split(" ", 2)
    assert code == "0" and stats == "False"
    assert "sims.settings.clusters.xor_cluster" in modules
    assert "images" not in modules and "dichotomy" not in modules


TABLE = {"machine": "test CPU", "date": "2026-12-06", "settings": {
    "xor-cluster": {"paper": dict(kind="trained", step_s=0.002, steps=1000, n_evals=10, eval_s=0.5, build_s=1.0,
                                  total_s=8.0, threads=1, flops_per_step=3e9)},
    "svm-proliferation": {"paper": dict(kind="grid", point_s=0.5, points=20, points_timed=5, grid_s=2.5,
                                        complete=False, build_s=0.0, total_s=10.0)}}}


def test_show_states_the_measured_cost_of_a_preset(capsys, monkeypatch):
    from sims import costs

    monkeypatch.setattr(costs, "load", lambda: TABLE)
    code, out, _ = _run(["show", "xor-cluster", "--preset", "paper"], capsys)
    line = next(x for x in out.splitlines() if x.startswith("cost of preset paper:"))
    assert code == 0 and "2 ms per step" in line and "1,000 steps + 10 evaluations" in line
    assert "about 8 s in all" in line and "3 GFLOP per step" in line and "test CPU" in line
    code, out, _ = _run(["show", "svm-proliferation", "--preset", "paper"], capsys)
    assert code == 0 and "5 of 20 points timed" in out and "at least 10 s in all" in out
    code, out, _ = _run(["show", "xor-cluster", "--preset", "ci"], capsys)
    assert code == 0 and "cost of preset ci: not measured" in out
    code, _, err = _run(["show", "xor-cluster", "--preset", "huge"], capsys)
    assert code == 2 and "valid presets: ci, default, paper" in err


def test_shipped_cost_table_covers_every_paper_preset_without_torch():
    """Every setting of the index has a paper-preset record (measured, or why not), read without torch."""
    code = ("import sys; from sims import costs; from sims.index import load; "
            "missing = [n for n in load() if costs.record(n, 'paper') is None]; "
            "bad = [n for n in load() if n not in missing and not {'step_s', 'point_s', 'skipped'} & "
            "set(costs.record(n, 'paper'))]; "
            "text = [costs.describe(n, 'paper') for n in load()]; "
            "print(missing, bad, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]", "False"]
