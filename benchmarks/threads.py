"""CPU thread choice under contention: the default (timed per run) against every fixed thread count.

A researcher's laptop is never idle and sweeps run several processes, so the engine chooses the intra-op
thread count per run (`sims.threads.choose_threads`: forward + backward timed at 1 thread and at all threads,
the faster kept). This script starts `--competitors` busy processes (pure-Python spin loops, one core each),
then times two workloads with --threads 1, --threads N (all cores) and the default:

- dmf-completion, default preset, depth 3, no baseline: 100 x 100 matmuls, too small to share;
- leaky-relu-highdim with 8 seeds as one ensemble (d = 2000, m = 512, n = 100): compute-bound batched matmuls.

Reported: wall time of each, and the default's time over the best fixed count. Target: <= 1.3 under one
competing busy process. The training time (summary elapsed_s) is compared; set-up is the same for all.

Run: python benchmarks/threads.py [--competitors 1] [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
from pathlib import Path

import torch

import sims

WORKLOADS = {
    "dmf-completion depth 3": dict(name="dmf-completion", seeds=1,
                                   overrides=dict(depth=3, baseline=False, steps=3000, n_evals=4, loss_threshold=0.0)),
    "leaky-relu-highdim x8": dict(name="leaky-relu-highdim", seeds=8,
                                  overrides=dict(lc=False, steps=40, n_evals=2)),
}


def _spin() -> None:
    x = 0
    while True:
        x += 1


def timed(workload: dict, threads: int | None) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        r = sims.run(workload["name"], seeds=workload["seeds"], device="cpu", out=tmp, figures=False,
                     threads=threads, **workload["overrides"])
        return r.summary["elapsed_s"], r.environment["threads"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--competitors", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    most = torch.get_num_threads()
    busy = [mp.Process(target=_spin, daemon=True) for _ in range(args.competitors)]
    for p in busy:
        p.start()
    results = {}
    try:
        for label, w in WORKLOADS.items():
            row = {}
            for key, threads in (("1 thread", 1), (f"{most} threads", most), ("default", None)):
                times = [timed(w, threads) for _ in range(args.repeats)]
                row[key] = dict(seconds=min(t for t, _ in times), chosen=[n for _, n in times])
            best = min(row["1 thread"]["seconds"], row[f"{most} threads"]["seconds"])
            row["default_over_best"] = row["default"]["seconds"] / best
            results[label] = row
            print(f"{label}: 1 thread {row['1 thread']['seconds']:.2f} s, {most} threads "
                  f"{row[f'{most} threads']['seconds']:.2f} s, default {row['default']['seconds']:.2f} s (chose "
                  f"{row['default']['chosen']}): default / best = {row['default_over_best']:.2f} (target <= 1.3)")
    finally:
        for p in busy:
            p.terminate()
    out = dict(competitors=args.competitors, cores=os.cpu_count(), results=results, torch=torch.__version__)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
