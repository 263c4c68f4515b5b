"""Sweep grouping: 32 configurations (8 learning rates x 4 init scales) x 4 seeds of a small setting, run as
grouped ensembles against one run per point, on the same loopback Dask cluster.

The setting is a small xor-cluster (n = 40, d = 200, ||mu|| = 4, width 32, 200 test points, LC off, 200 GD
steps; the kind of run a hyperparameter scan repeats many times). lr and
init_scale are member-wise there, so the 128 points group into ensembles of up to `sims.sweep.MEMBER_CAP`
members (2 ensembles); with cap = 1 every point is its own run. Both sweeps run on one loopback
`LocalCluster`, started and warmed (imports done) by a small sweep before the timing, so its start-up is paid
by neither; each writes its runs, sweep.json and results.csv (per-run figures off in both). Wall time includes
the plan, the scheduling and the writing of results. Target: grouped >= 5x faster.

Run: python benchmarks/sweep.py [--workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from sims import sweep

GRID = {"lr": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4], "init_scale": [1e-5, 1e-4, 1e-3, 1e-2]}
BASE = dict(lc=False, d=200, mu_norm=4.0, width=32, n_test=200, steps=200, n_evals=10)


def timed(cap: int, scheduler: str, grid=GRID, seeds: int = 4) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index = sweep.sweep("xor-cluster", grid, preset="ci", seeds=seeds, base=BASE, out=Path(tmp) / "s",
                            device="cpu", scheduler=scheduler, threads=1, cap=cap)
        elapsed = time.perf_counter() - t0
        assert all(g["status"] == "completed" for g in index["groups"]), index["groups"]
        return elapsed, len(index["groups"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as c:
        timed(1, c.scheduler_address, grid={"lr": [0.1, 0.2]}, seeds=args.workers)  # warm-up: imports on every worker
        grouped, n_grouped = timed(sweep.MEMBER_CAP, c.scheduler_address)
        single, n_single = timed(1, c.scheduler_address)
    out = dict(points=128, workers=args.workers, grouped_s=grouped, grouped_runs=n_grouped, single_s=single,
               single_runs=n_single, speedup=single / grouped, torch=torch.__version__)
    print(f"128 points on {args.workers} loopback workers: {n_grouped} ensembles {grouped:.1f} s, {n_single} single "
          f"runs {single:.1f} s: grouped is {out['speedup']:.1f}x faster (target >= 5)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
