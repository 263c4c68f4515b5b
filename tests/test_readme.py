"""Every command in README.md runs as written, at the `ci` size (and every figure a page shows exists).

The commands are the lines of README's shell blocks (```bash, ```sh, ```console or a bare ```) and of a ```toml
block's first comment (`# FILE.toml: COMMAND`) whose program is `sims`, `python`, `make` or `pip`. Each runs in
README's order in one temporary working directory, through `sims.cli.main`, after `ci_size` (below); the few
that cannot run here are in `SKIP` with the reason. A command neither run nor skipped fails the test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from sims.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PROGRAMS = ("sims", "python", "make", "pip")
SIZED = ("run", "sweep", "reproduce", "atlas")  # the subcommands that take --preset and --threads

# command (as README writes it, comment stripped) -> why the test does not run it
SKIP = {
    'pip install "implicit-bias-lab[all]"': "installs from the package index (no network here)",
    'pip install -e ".[all]"': "installs the clone into the environment (tests/test_packaging.py builds the wheel)",
    "pip install torch --index-url https://download.pytorch.org/whl/cpu": "downloads torch (no network here)",
    "make run": "creates .venv and installs torch and every extra (needs the network)",
    "make test": "runs this whole suite",
    "sims atlas --preset ci": "~2 min at ci on 2 cores; tests/sims/test_atlas.py runs the ci atlas",
    "sims reproduce xu2024 --fresh 10": "ten reproductions; tests/sims/test_claims_seeds.py runs --fresh at ci",
    "sims reproduce xu2024 --update-papers": "rewrites the repository's papers/xu2024.md; "
                                             "tests/reliability/test_writers.py covers --update-papers",
}


def readme_commands(text: str) -> list[tuple[str, dict]]:
    """(command, files to write first) for each command line of README's shell blocks and toml examples."""
    out = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        if lang == "toml":
            head = re.match(r"# (\S+\.toml): (.+)", body)
            if head:
                out.append((head.group(2).strip(), {head.group(1): body}))
            continue
        if lang not in ("", "bash", "sh", "console"):
            continue
        for line in body.splitlines():
            line = line.removeprefix("$ ")
            command = line.split(" #", 1)[0].strip()
            if command.split(" ", 1)[0] in PROGRAMS:
                out.append((command, {}))
    return out


def ci_size(argv: list[str], last_run: Path | None) -> list[str]:
    """The README command `argv` as this test runs it: `python -m sims` is `sims`; run, sweep, reproduce and atlas get
    `--preset ci` (replacing default or paper, or added) and `--threads 1` unless given; a reproduce without `--out`
    writes to reproduce/KEY (so that two commands on one key share their runs); `RUN_DIR` is `last_run`, the
    newest run directory under runs/. Returns the arguments of `sims` (without the program name)."""
    args = argv[3:] if argv[:3] == ["python", "-m", "sims"] else argv[1:]
    if args and args[0] in SIZED and "--resume" not in args:
        if "--preset" in args:
            args[args.index("--preset") + 1] = "ci"
        else:
            args += ["--preset", "ci"]
        if "--threads" not in args:
            args += ["--threads", "1"]
        if args[0] == "reproduce" and "--out" not in args:
            args += ["--out", f"reproduce/{args[1]}"]
    if "RUN_DIR" in args:
        assert last_run is not None, f"{argv}: RUN_DIR before any `sims run`"
        args = [str(last_run) if a == "RUN_DIR" else a for a in args]
    return args


def test_readme_commands_are_found():
    commands = [c for c, _ in readme_commands(README.read_text())]
    assert "sims list" in commands and any(c.startswith("sims reproduce") for c in commands)
    assert any(c.startswith("sims sweep") and "--config" in c for c in commands)  # the toml example
    assert [c for c in SKIP if c not in commands] == [], "SKIP names a command README no longer has"
    for c in commands:
        assert c.split()[0] == "sims" or c in SKIP, f"README command {c!r} is neither run by this test nor skipped"


def test_ci_size_rewrites():
    assert ci_size(["sims", "run", "x", "--preset", "default"], None) == ["run", "x", "--preset", "ci",
                                                                         "--threads", "1"]
    assert ci_size(["python", "-m", "sims", "reproduce", "k", "--threads", "2"], None) == [
        "reproduce", "k", "--threads", "2", "--preset", "ci", "--out", "reproduce/k"]
    assert ci_size(["sims", "plot", "RUN_DIR"], Path("runs/a/b")) == ["plot", str(Path("runs/a/b"))]
    assert ci_size(["sims", "run", "--resume", "RUN_DIR"], Path("d")) == ["run", "--resume", "d"]


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIMS_RUNS", raising=False)
    ran = []
    for command, files in readme_commands(README.read_text()):
        if command in SKIP:
            continue
        for name, body in files.items():
            (tmp_path / name).write_text(body)
        runs = sorted((tmp_path / "runs").glob("*/*/config.json"), key=lambda p: p.stat().st_mtime)
        args = ci_size(shlex.split(command), runs[-1].parent if runs else None)
        code = main(args)
        assert code == 0, f"README command {command!r} (run as `sims {' '.join(args)}`) exited {code}"
        ran.append(command)
    assert len(ran) >= 8


def _pages():
    return [README, *sorted((ROOT / "papers").glob("*.md"))]


def test_every_figure_a_page_shows_exists():
    missing = []
    for page in _pages():
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            if not target.startswith("http") and not (page.parent / target).is_file():
                missing.append(f"{page.name}: {target}")
    assert missing == []


def test_every_figure_in_papers_is_shown_by_a_page():
    text = "\n".join(p.read_text() for p in _pages())
    figures = sorted((ROOT / "papers" / "figures").rglob("*.png"))
    assert figures, "papers/figures/ holds no figure"
    unshown = [str(f.relative_to(ROOT)) for f in figures if str(f.relative_to(ROOT / "papers")) not in text]
    assert unshown == []


def test_adding_a_simulation_snippet_registers_and_runs(tmp_path, monkeypatch):
    """README's "Adding a simulation" code block, written into a module of its own and imported, registers a
    trained and a grid setting that run at ci (the block's own names, as a reader would copy it)."""
    import importlib.util

    import sims
    from sims import registry

    section = README.read_text().split("## Adding a simulation", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    path = tmp_path / "my_settings.py"
    path.write_text(code)
    names = ("my-least-squares", "my-min-norm-grid")
    try:
        spec = importlib.util.spec_from_file_location("my_settings", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        run = sims.run(names[0], preset="ci", seeds=2, out=tmp_path / "runs", figures=False, threads=1)
        loss = run.metric("train_loss")  # [n_evals, 2]: GD from zero lowers each member's loss
        assert run.summary["status"] == "completed" and loss.shape[1] == 2 and (loss[-1] < loss[0]).all()
        grid = sims.run(names[1], preset="ci", seeds=16, out=tmp_path / "runs", figures=False)
        norms = grid.metric("norm")  # [2 points, 16 repetitions]
        # E ||w||^2 = n / (d - n - 1) for Gaussian X and y (inverse Wishart): 20/19 at d = 2n, 20/59 at d = 4n
        expected = [20 / 19, 20 / 59]
        assert grid.summary["status"] == "completed" and norms.shape == (2, 16)
        np.testing.assert_allclose((norms ** 2).mean(axis=1), expected, rtol=0.35)
    finally:
        for name in names:
            registry._REGISTRY.pop(name, None)
