"""Every input is checked before anything is written or allocated: one line on stderr, exit 2, no directory.

Classes: repeated keys and values, a string where a list belongs, empty grids, integers that must stay exact,
sizes beyond the device's memory, unusable output paths, bad workers / scheduler / device / preset for every
command that takes them, and damaged files in a run directory."""

import json
import time

import pytest
import torch

import sims
from sims import sweep as sw
from sims.cli import main
from sims.config import ConfigError


def _usage_error(argv, capsys, where, message):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err  # one message, no traceback
    assert not where.exists() or not any(where.iterdir()), f"{where} was written"


CASES = {
    "set given twice": (["run", "xor-cluster", "--set", "width=8", "--set", "width=16"], "given twice"),
    "dtype given twice": (["run", "xor-cluster", "--dtype", "float64", "--set", "dtype=float32"], "give the dtype once"),
    "grid key given twice": (["sweep", "xor-cluster", "--grid", "width=8", "--grid", "width=16"], "given twice"),
    "grid value repeated": (["sweep", "xor-cluster", "--grid", "width=8,8"], "repeats a value"),
    "grid key without values": (["sweep", "xor-cluster", "--grid", "width="], "has no values"),
    "grid and set share a key": (["sweep", "xor-cluster", "--grid", "width=8,16", "--set", "width=4"],
                                 "both as --grid and as --set"),
    "same configuration twice": (["sweep", "xor-cluster", "--grid", "lr=1,1.0"], "same configuration twice"),
    "too many seeds": (["run", "xor-cluster", "--seeds", "100000"], "needs about"),
    "too large a dimension": (["run", "xor-cluster", "--set", "d=1000000000"], "needs about"),
    "too large a sensing problem": (["run", "dmf-sensing", "--set", "n=2000", "--set", "n_obs=100000"], "needs about"),
    "sweep too large": (["sweep", "xor-cluster", "--grid", "d=100000000,200000000"], "needs about"),
    "workers below 1 (sweep)": (["sweep", "xor-cluster", "--grid", "width=8", "--workers", "-1"], "workers must be"),
    "workers below 1 (reproduce)": (["reproduce", "xu2024", "--workers", "-2"], "workers must be"),
    "malformed scheduler": (["sweep", "xor-cluster", "--grid", "width=8", "--scheduler", "nohost"],
                            "--scheduler must be an address"),
    "device (sweep)": (["sweep", "xor-cluster", "--grid", "width=8", "--device", "tpu"], "device must be"),
    "device (reproduce)": (["reproduce", "xu2024", "--device", "tpu"], "device must be"),
    "preset (sweep)": (["sweep", "xor-cluster", "--grid", "width=8", "--preset", "cii"], "unknown preset 'cii'"),
    "preset (reproduce)": (["reproduce", "xu2024", "--preset", "cii"], "unknown preset 'cii'"),
    "resume with a name": (["run", "xor-cluster", "--resume", "somewhere"], "--resume continues a run"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments(case, capsys, tmp_path):
    argv, message = CASES[case]
    out = tmp_path / "out"
    preset = [] if "--preset" in argv else ["--preset", "ci"]
    _usage_error(argv + preset + ["--out", str(out)], capsys, out, message)


@pytest.mark.parametrize("command", [["run", "xor-cluster"], ["sweep", "xor-cluster", "--grid", "width=8"],
                                     ["reproduce", "xu2024"]])
def test_unusable_output_paths(command, capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in ((str(a_file), "is a file"), (str(a_file / "below"), "is a file"), ("", "--out is empty"),
                         ("/proc/sims-runs", "cannot write in /proc")):
        _usage_error(command + ["--preset", "ci", "--out", out], capsys, tmp_path / "never", message)
    assert a_file.read_text() == "x"


def test_an_unreachable_scheduler_fails_fast(capsys, tmp_path):
    t0 = time.time()
    _usage_error(["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8", "--scheduler", "tcp://127.0.0.1:1",
                  "--out", str(tmp_path / "out")], capsys, tmp_path / "out", "cannot reach the Dask scheduler")
    assert time.time() - t0 < 20


@pytest.mark.parametrize("grid,message", [({"width": "816"}, "a string is one value"), ({"width": []}, "no values"),
                                          ({"width": (8, 16, 8)}, "repeats a value"), ({"seed": [1, 1]}, "repeats")])
def test_bad_grids_from_python(grid, message):
    with pytest.raises(ConfigError, match=message):
        sw.plan("xor-cluster", grid, preset="ci")


def test_integers_stay_exact(runs_dir):
    big = 12345678901234567
    r = sims.run("svm-proliferation", preset="ci", seed=str(big), n_points=1)
    assert r.config.seed == big
    assert json.loads((r.dir / "config.json").read_text())["config"]["seed"] == big
    assert [p.settings["seed"] for p in sw.plan("svm-proliferation", {"seed": [str(big)]}, preset="ci")] == [big]
    with pytest.raises(ConfigError, match="cannot be read as int"):
        sims.run("svm-proliferation", preset="ci", n="1.5")


def test_memory_estimate_is_checked_before_allocation(runs_dir, monkeypatch):
    from sims import memory

    monkeypatch.setattr(memory, "available", lambda device: 10 * 2**20)  # a machine with 10 MiB free
    allocated = []
    monkeypatch.setattr(torch, "randn", lambda *a, **k: allocated.append(1))
    with pytest.raises(ConfigError, match=r"needs about .* GiB .*but the cpu has 0.00977 GiB free"):
        sims.run("xor-cluster", preset="default")
    assert not allocated and not runs_dir.exists()
