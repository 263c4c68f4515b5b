"""Every script in examples/ runs as a user would run it (a subprocess, this checkout first on the path) at a
small size, writes only where it is told, and prints what it promises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {  # script -> (small-size arguments, text its output must contain)
    "max_margin_kkt.py": (["--n", "20", "--d", "5", "--steps", "300"], "kkt_residual at the max-margin"),
    "deep_factorisation.py": (["--n", "10", "--observed", "50", "--steps", "300"], "depth 3"),
    "lc_own_model.py": (["--steps", "4"], "CNN through training"),
    "exact_regions.py": (["--width", "8", "--out", "{out}"], "max |affine map - net|"),
    "sweep_frame.py": (["--steps", "5", "--seeds", "1", "--out", "{out}/sweep"], "final accuracies per grid point"),
    "own_setting.py": (["--steps", "50", "--out", "{out}"], "a claim's runs: sims run example-min-norm"),
}
NEEDS_PANDAS = {"sweep_frame.py", "own_setting.py"}


def test_every_example_is_listed():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs(script, tmp_path):
    if script in NEEDS_PANDAS:
        pytest.importorskip("pandas", reason="pandas is a dependency of the package (pyproject.toml)")
    args, expected = EXAMPLES[script]
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path[1:]]), MPLBACKEND="Agg",
               SIMS_RUNS=str(tmp_path / "runs-not-used"))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *[a.format(out=out) for a in args]],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
    assert not (tmp_path / "runs-not-used").exists() and not (tmp_path / "runs").exists()
    if "--out" in args:
        assert any(out.rglob("*")), f"{script} wrote nothing into --out"
