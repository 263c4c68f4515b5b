"""Every argument is checked before anything is written or trained (issue 21.6, 24.6): one line on stderr, exit 2,
the --out directory never made. Classes: command options (threads, seeds, seed, workers) for every command and
from Python, the seed range the generators accept, the LC directions within the input dimension, a memory
estimate for every setting, data files (path, shape, dtype, label range, data_dir only where it is read), and
config files (`--config FILE.toml`) with the checks of `--set`."""

import json
import struct

import numpy as np
import pytest

import sims
from sims import registry
from sims import sweep as sw
from sims.atlas import atlas
from sims.claims.runner import reproduce
from sims.cli import main
from sims.config import SEED_LIMIT, ConfigError


def _refused(argv, capsys, out, message):
    code = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists(), f"{out} was written"


# ------------------------------------------------------------------------------------ options of every command

OPTIONS = {
    "threads below 1 (run)": (["run", "svm-proliferation", "--threads", "-3"], "threads must be an integer >= 1"),
    "threads below 1 (sweep)": (["sweep", "svm-proliferation", "--grid", "n_points=1,2", "--threads", "-1"],
                                "threads must be an integer >= 1"),
    "threads below 1 (atlas)": (["atlas", "--threads", "-2"], "threads must be an integer >= 1"),
    "threads below 1 (reproduce)": (["reproduce", "frei2023", "--threads", "-5"], "threads must be an integer >= 1"),
    "seeds 0 (sweep)": (["sweep", "svm-proliferation", "--grid", "n_points=1", "--seeds", "0"],
                        "seeds must be an integer >= 1"),
    "seed beyond the generators (reproduce)": (["reproduce", "frei2023", "--seed", str(2**61)],
                                               "seed must be an integer in [0,"),
    "negative seed (reproduce)": (["reproduce", "frei2023", "--seed", "-1"], "seed must be an integer in [0,"),
    "member seed past the limit (run)": (["run", "xor-cluster", "--seeds", "3", "--set", f"seed={SEED_LIMIT - 2}"],
                                         "seeds must lie in [0, 2**60 - 1]"),
    "seed past the limit (sweep grid)": (["sweep", "xor-cluster", "--grid", f"seed=1,{2**62}"], "out of range"),
    "seed of a grid simulation": (["run", "svm-proliferation", "--set", f"seed={2**64}"], "2**60 - 1"),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_command_options(case, capsys, tmp_path):
    argv, message = OPTIONS[case]
    _refused(argv + ["--preset", "ci"], capsys, tmp_path / "out", message)


@pytest.mark.parametrize("call,message", [
    (lambda out: sims.run("svm-proliferation", preset="ci", out=out, threads="1"), "threads must be"),
    (lambda out: sims.run("svm-proliferation", preset="ci", out=out, seeds=2.0), "seeds must be"),
    (lambda out: sims.run(None, out=out), "name must be a non-empty string"),
    (lambda out: sims.run("svm-proliferation", preset="ci", out=123), "out must be a path"),
    (lambda out: sw.sweep("svm-proliferation", {"n_points": [1]}, preset="ci", out=out, threads=0), "threads must"),
    (lambda out: sw.sweep("svm-proliferation", {"n_points": [1]}, preset="ci", out=out, cap=0), "cap must be"),
    (lambda out: sw.sweep("svm-proliferation", {"n_points": [1]}, preset="ci", out=out, workers=-1), "workers must"),
    (lambda out: atlas("ci", out, threads=1.5), "threads must be"),
    (lambda out: reproduce("frei2023", preset="ci", out=out, seed=SEED_LIMIT), "seed must be an integer in"),
    (lambda out: reproduce("frei2023", preset="ci", out=out, threads=True), "threads must be"),
    (lambda out: sims.load(None), "run_dir must be a path"),
])
def test_python_api_names_the_argument(call, message, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message):
        call(out)
    assert not out.exists()


def test_sims_show_states_the_seed_range(capsys):
    assert main(["show", "xor-cluster"]) == 0
    seed_line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("seed "))
    assert "[0, 2**60 - 1]" in seed_line


def test_the_largest_seed_runs(tmp_path):
    r = sims.run("svm-proliferation", preset="ci", out=tmp_path, seed=SEED_LIMIT - 1, n_points=1, threads=1)
    assert r.summary["status"] == "completed" and r.seeds == [SEED_LIMIT - 1]


# ---------------------------------------------------------------------------------- sizes checked before use

SIZES = {
    "lc_dirs above the input dimension (xor-cluster)": (["run", "xor-cluster", "--set", "d=4", "--set", "lc_dirs=8"],
                                                        "lc_dirs=8 exceeds the input dimension 4"),
    "lc_dirs above the pixels (image-grokking)": (["run", "image-grokking", "--set", "lc_dirs=41"],
                                                  "exceeds the input dimension 40"),
    "lc_dirs above 2p (sweep)": (["sweep", "modular-addition", "--grid", "p=3,31", "--set", "lc_dirs=7"],
                                 "exceeds the input dimension 6"),
    "modular-addition too large": (["run", "modular-addition", "--set", "p=20000"], "needs about"),
    "dichotomy too large": (["run", "dichotomy-sparse", "--set", "d=100000000", "--set", "n_test=100000"],
                            "needs about"),
    "early-time too large": (["run", "early-time", "--set", "width=1000000", "--set", "d=100000"], "needs about"),
    "double-descent too large": (["run", "double-descent", "--set", "p_max=100000000"], "needs about"),
    "benign-regression too large": (["run", "benign-regression", "--set", "d=1000000000", "--set", "n_max=1000"],
                                    "needs about"),
    "dichotomy-completion too large": (["run", "dichotomy-completion", "--set", "d=200000"], "needs about"),
}


@pytest.mark.parametrize("case", sorted(SIZES))
def test_sizes(case, capsys, tmp_path):
    argv, message = SIZES[case]
    _refused(argv + ["--preset", "ci"], capsys, tmp_path / "out", message)


def test_every_setting_has_a_memory_estimate():
    for name in registry.names():
        sim = registry.get(name)
        members = registry.members(sim, "ci", {}, seeds=2)
        parts = sim.memory(members, 4)
        assert parts and all(v >= 0 for v in parts.values()), name
        if sim.kind == "trained":  # members train as one tensor program (grid members may run one at a time)
            bigger = registry.members(sim, "ci", {}, seeds=4)
            assert sum(sim.memory(bigger, 4).values()) > sum(parts.values()), f"{name}: members cost nothing"


# ------------------------------------------------------------------------------------------------ data files

def _idx(array: np.ndarray, shape=None) -> bytes:
    shape = array.shape if shape is None else shape
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}i", *shape) + array.tobytes()


def _mnist(folder, *, size=28, labels_hi=10, n=30, header=None):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    names = {"train-images-idx3-ubyte": rng.integers(0, 256, (n, size, size), dtype=np.uint8),
             "train-labels-idx1-ubyte": rng.integers(0, labels_hi, n, dtype=np.uint8),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n, size, size), dtype=np.uint8),
             "t10k-labels-idx1-ubyte": rng.integers(0, labels_hi, n, dtype=np.uint8)}
    for name, array in names.items():
        (folder / name).write_bytes(_idx(array, header if header and name.startswith("t10k-images") else None))
    return folder


def _npz(path, **changes):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 30),
                  x_test=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 30))
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


DATA = {
    "16x16 images": (lambda d: _mnist(d / "m", size=16), "have shape (30, 16, 16); expected [n, 28, 28]"),
    "labels out of range": (lambda d: _mnist(d / "m", labels_hi=12), "labels in"),
    "negative IDX size": (lambda d: _mnist(d / "m", header=(-30, 28, 28)), "negative sizes"),
    "float labels in npz": (lambda d: _npz(d / "f.npz", y_train=np.random.default_rng(0).random(30) * 9),
                            "y_train) must be integers 0..9; got dtype float64"),
    "float images in npz": (lambda d: _npz(d / "f.npz", x_test=np.zeros((30, 28, 28))), "x_test) must be integers"),
    "too few images": (lambda d: _npz(d / "f.npz"), "has 30 images; asked for 100"),
    "a directory with no MNIST": (lambda d: (d / "empty").mkdir() or d / "empty", "not found"),
}


@pytest.mark.parametrize("case", sorted(DATA))
def test_data_files(case, capsys, tmp_path):
    make, message = DATA[case]
    source = make(tmp_path)
    argv = ["run", "image-grokking", "--preset", "ci", "--set", "dataset=mnist", "--set", f"data_dir={source}",
            "--set", "n_train=100"]
    _refused(argv, capsys, tmp_path / "out", message)
    sweep_argv = ["sweep", "image-grokking", "--preset", "ci", "--grid", "lr=0.01,0.02", "--set", "dataset=mnist",
                  "--set", f"data_dir={source}", "--set", "n_train=100"]
    _refused(sweep_argv, capsys, tmp_path / "sweep", message)


def test_the_labels_error_names_the_labels_file(tmp_path):
    from sims import data

    folder = _mnist(tmp_path / "m", labels_hi=12)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte must lie in 0..9"):
        data.mnist_images(str(folder))


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_data_dir_only_where_it_is_read(dataset, capsys, tmp_path):
    _refused(["run", "image-cnn" if dataset == "digits" else "random-labels", "--preset", "ci", "--set",
              f"dataset={dataset}", "--set", f"data_dir={tmp_path}"], capsys, tmp_path / "out", "data_dir is read only")


def test_mnist_without_data_dir(capsys, tmp_path):
    _refused(["run", "image-grokking", "--preset", "ci", "--set", "dataset=mnist"], capsys, tmp_path / "out",
             "give data_dir")


# ----------------------------------------------------------------------------------------------- config files

CONFIGS = {
    "unknown key": ("widht = 8\n", "unknown config key 'widht'"),
    "bool for an int": ("width = true\n", "width must be of type int"),
    "string for a float": ('lr = "fast"\n', "cannot be read as float"),
    "out of range": ("noise_rate = 0.7\n", "noise_rate=0.7 is out of range"),
    "a list outside [grid]": ("width = [8, 16]\n", "must be one number, string or boolean"),
    "a table other than [grid]": ("[model]\nwidth = 8\n", "unknown table(s) ['model']"),
    "not TOML": ("width = = 8\n", "not valid TOML"),
    "seed beyond the generators": (f"seed = {2**62}\n", "out of range"),
}


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_config_files(case, command, capsys, tmp_path):
    text, message = CONFIGS[case]
    file = tmp_path / "c.toml"
    file.write_text(text)
    grid = ["--grid", "n=10,20"] if command == "sweep" else []
    _refused([command, "xor-cluster", "--preset", "ci", "--config", str(file)] + grid, capsys, tmp_path / "out",
             f"--config {file}: ")


@pytest.mark.parametrize("text,message", [("[grid]\nwidth = []\n", "non-empty list"),
                                          ("[grid]\nwidth = [8, 2.5]\n", "width must be of type int"),
                                          ("[grid]\nwidht = [8]\n", "unknown config key 'widht'")])
def test_config_file_grids(text, message, capsys, tmp_path):
    file = tmp_path / "c.toml"
    file.write_text(text)
    _refused(["sweep", "xor-cluster", "--preset", "ci", "--config", str(file)], capsys, tmp_path / "out", message)


@pytest.mark.parametrize("text,message", [("width = 8\n", "unknown key(s) ['width']"),
                                          ("threads = 0\n", "threads must be an integer >= 1"),
                                          ('seed = "one"\n', "seed must be an integer")])
def test_config_file_of_reproduce(text, message, capsys, tmp_path):
    file = tmp_path / "c.toml"
    file.write_text(text)
    _refused(["reproduce", "frei2023", "--preset", "ci", "--config", str(file)], capsys, tmp_path / "out", message)


def test_missing_config_file_and_resume(capsys, tmp_path):
    _refused(["run", "xor-cluster", "--config", str(tmp_path / "none.toml")], capsys, tmp_path / "out",
             "no such file")
    file = tmp_path / "c.toml"
    file.write_text("width = 8\n")
    assert main(["run", "--resume", str(tmp_path), "--config", str(file)]) == 2
    assert "drop --config" in capsys.readouterr().err


def test_set_overrides_the_config_file(tmp_path, capsys):
    file = tmp_path / "c.toml"
    file.write_text("n_points = 2\nseed = 5\nratio_max = 3.0\n")
    assert main(["run", "svm-proliferation", "--preset", "ci", "--config", str(file), "--set", "seed=7",
                 "--threads", "1", "--quiet", "--out", str(tmp_path / "runs")]) == 0
    [config] = (tmp_path / "runs").glob("*/*/config.json")
    cfg = json.loads(config.read_text())["config"]
    assert (cfg["n_points"], cfg["seed"], cfg["ratio_max"]) == (2, 7, 3.0)


def test_sweep_grid_from_the_config_file(tmp_path, capsys):
    file = tmp_path / "c.toml"
    file.write_text("n_points = 1\n[grid]\nratio_max = [2.0, 3.0]\nseed = [1, 2]\n")
    assert main(["sweep", "svm-proliferation", "--preset", "ci", "--config", str(file), "--grid", "seed=4",
                 "--threads", "1", "--quiet", "--out", str(tmp_path / "sweep")]) == 0
    index = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert index["grid"] == {"ratio_max": [2.0, 3.0], "seed": ["4"]}
    assert index["base"] == {"n_points": 1}


@pytest.mark.parametrize("kwargs,message", [(dict(x=None, y="margin"), "x must be a non-empty string"),
                                            (dict(x="n", y=""), "y must be a non-empty string"),
                                            (dict(x="n", y="margin", hue=3), "hue must be a non-empty string")])
def test_sweep_figure_names_the_argument(kwargs, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        sw.figure(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_resume_checks_threads(tmp_path):
    with pytest.raises(ConfigError, match="threads must be an integer >= 1; got 0"):
        sims.resume(tmp_path, threads=0)
