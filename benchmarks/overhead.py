"""Per-command overhead of a ci run: its wall time against its training time plus the time of importing torch.

A `sims run NAME --preset ci --threads 1` spends its time importing (torch, the setting, scipy for the metrics),
building the task, training (`elapsed_s` in the run's summary.json: the engine's loop with its evaluations),
computing transitions and drawing figures. Target (issue 25): wall <= 2 x (training + `python -c "import torch"`).

Each command runs in a fresh interpreter (`python -m sims ...` from a checkout, this one unless --checkout),
interleaved with `python -c "import torch"`, `--repeats` times, with and without figures (`--no-figures`); the
median of each is reported with the ratio, the machine (CPU model, cores, torch) and the load average before
and after. On a shared machine the times swing; the ratio from one run is what counts. `--checkout DIR` times
another checkout of the package; `--baseline DIR` times a second checkout (e.g. the commit before, from `git
archive`) interleaved in the same run, for a before/after under the same load.

Run: python benchmarks/overhead.py [--repeats 3] [--checkout DIR] [--baseline DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "xor-cluster": ["xor-cluster", "--preset", "ci", "--threads", "1"],
    "dichotomy-sparse": ["dichotomy-sparse", "--preset", "ci", "--seeds", "2", "--threads", "1"],
}
TARGET = 2.0


def machine() -> str:
    """CPU model, core count, Python and torch versions."""
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch_version}"


def import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def sims_run(checkout: Path, argv: list[str], out: Path, figures: bool) -> tuple[float, float]:
    """(wall seconds, training seconds from summary.json) of one `python -m sims run ARGV` in `checkout`."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.rglob("summary.json"))
    cmd = [sys.executable, "-m", "sims", "run", *argv, "--quiet", "--out", str(out)]
    cmd += [] if figures else ["--no-figures"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary, = set(out.rglob("summary.json")) - before
    return wall, float(json.loads(summary.read_text())["elapsed_s"])


def _has_no_figures(checkout: Path) -> bool:
    """Whether the checkout's `sims run` takes --no-figures (older ones lack it)."""
    return "--no-figures" in (checkout / "sims" / "cli.py").read_text()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose `python -m sims` is timed")
    p.add_argument("--baseline", type=Path, help="another checkout timed in the same run, interleaved (before/after)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    load_before, started = os.getloadavg(), time.perf_counter()
    checkouts = [args.checkout] + ([args.baseline] if args.baseline else [])
    cases = [(c, name, figures) for c in checkouts for name in RUNS
             for figures in ((True, False) if _has_no_figures(c) else (True,))]
    torch_s: list[float] = []
    walls: dict = {c: [] for c in cases}
    trains: dict = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so a change of load hits every command alike
            torch_s.append(import_torch())
            for c, name, figures in cases:
                wall, train = sims_run(c, RUNS[name], Path(tmp) / "runs", figures)
                walls[(c, name, figures)].append(wall)
                trains[(c, name, figures)].append(train)
    load_after = os.getloadavg()
    t_torch = statistics.median(torch_s)
    print(f"machine: {machine()}; checkout {args.checkout}" + (f", baseline {args.baseline}" if args.baseline else ""))
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; median of {args.repeats}; "
          f"{time.perf_counter() - started:.0f} s in all")
    print(f"python -c 'import torch': {t_torch:.2f} s")
    print(f"{'command':<48} {'wall s':>7} {'train s':>8} {'ratio':>6}  target <= {TARGET:g}")
    rows = []
    for case in cases:
        c, name, figures = case
        wall, train = statistics.median(walls[case]), statistics.median(trains[case])
        ratio = wall / (train + t_torch)
        label = ("(baseline) " if c != args.checkout else "") + f"sims run {' '.join(RUNS[name])}"
        label += "" if figures else " --no-figures"
        print(f"{label:<48} {wall:>7.2f} {train:>8.2f} {ratio:>6.2f}  {'met' if ratio <= TARGET else 'NOT met'}")
        rows.append(dict(command=label, checkout=str(c), wall_s=walls[case], train_s=trains[case],
                         ratio=ratio, met=ratio <= TARGET))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=machine(), load_before=load_before, load_after=load_after,
                                                   import_torch_s=torch_s, runs=rows), indent=1))


if __name__ == "__main__":
    main()
