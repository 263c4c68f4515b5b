"""Start-up cost of the light commands against `python -c "import torch"`, and of creating an optimiser.

`sims list`, `sims show NAME` and `sims --help` read the shipped index (`sims/index.json`) and import neither
torch nor a setting module, so each should take at most half the time of importing torch (target <= 0.5).
Each command runs in a fresh interpreter (`python -m sims ...` from this checkout), interleaved with the torch
import, `--repeats` times; the median wall time of each is reported with the machine's load average before and
after (on a shared machine the times swing; the ratio, measured in one run, is what counts).

Optimiser: in a fresh interpreter with torch imported, the time to create an optimiser and take one step, for
torch's `torch.optim.SGD` (its first `add_param_group` imports `torch._dynamo`) and for `sims.optim.make`
(which skips that import), and whether `torch._dynamo` ended up imported.

Run: python benchmarks/cli_overhead.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python -c 'import torch'": ["-c", "import torch"],
    "sims list": ["-m", "sims", "list"],
    "sims show xor-cluster": ["-m", "sims", "show", "xor-cluster"],
    "sims --help": ["-m", "sims", "--help"],
}

OPTIMISER = """
import sys, time, torch
{imports}
p = torch.nn.Parameter(torch.zeros(4, 8))
start = time.perf_counter()
opt = {make}
p.grad = torch.ones_like(p)
opt.step()
print(time.perf_counter() - start, "torch._dynamo" in sys.modules)
"""
OPTIMISERS = {
    "torch.optim.SGD": dict(imports="", make="torch.optim.SGD([p], lr=0.1)"),
    "sims.optim.make('sgd')": dict(imports="from sims import optim", make="optim.make('sgd', [p], [0.1], [0.0])"),
}


def wall(args: list[str]) -> float:
    """Seconds from starting `python ARGS` in this checkout to its exit (it must succeed)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def optimiser(code: dict) -> tuple[float, bool]:
    """(seconds to create the optimiser and take one step, whether torch._dynamo was imported) in a fresh process."""
    out = subprocess.run([sys.executable, "-c", OPTIMISER.format(**code)], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    opt_times: dict[str, list[float]] = {k: [] for k in OPTIMISERS}
    dynamo: dict[str, bool] = {}
    for _ in range(args.repeats):  # interleaved, so a change of load hits every command alike
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
        for name, code in OPTIMISERS.items():
            t, dynamo[name] = optimiser(code)
            opt_times[name].append(t)
    load_after = os.getloadavg()
    median = {k: statistics.median(v) for k, v in times.items()}
    torch_s = median["python -c 'import torch'"]
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs; "
          f"median of {args.repeats}")
    print(f"{'command':<28} {'wall s':>8} {'/ import torch':>15}")
    for name, t in median.items():
        print(f"{name:<28} {t:>8.3f} {t / torch_s:>15.3f}")
    ok = all(median[k] <= 0.5 * torch_s for k in ("sims list", "sims show xor-cluster"))
    print(f"target: sims list and sims show <= 0.5 x import torch: {'met' if ok else 'NOT met'}")
    print(f"\n{'optimiser (create + 1 step)':<28} {'s':>8}  torch._dynamo imported")
    for name, v in opt_times.items():
        print(f"{name:<28} {statistics.median(v):>8.3f}  {dynamo[name]}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(load_before=load_before, load_after=load_after, commands=times,
                                                   optimisers=opt_times, dynamo=dynamo, target_met=ok), indent=1))


if __name__ == "__main__":
    main()
