"""A sweep from Python, its results as a pandas DataFrame (`sims.sweep.sweep`, `sims.load(DIR).frame()`).

Runs xor-cluster (Xu et al. 2024) over a grid of learning rates and widths at a few seeds (points that differ
only in member-wise fields train as one ensemble), then reads the sweep back as a long DataFrame and
summarises the final test accuracy per grid point. Writes into --out (a temporary directory by default).

    python examples/sweep_frame.py [--steps 20 --seeds 2 --out DIR]
"""

import argparse
import tempfile
from pathlib import Path

import sims
from sims.sweep import sweep


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="sweep directory (default: a temporary one)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="sweep-frame-")) / "sweep"
    small = dict(steps=args.steps, n_evals=5, n=40, d=400, mu_norm=6.0, n_test=200, lc=False)  # seconds on a CPU
    index = sweep("xor-cluster", {"lr": [0.5, 1.0], "width": [8, 32]}, preset="ci", seeds=args.seeds, base=small,
                  out=out, device="cpu", threads=1)
    print(f"sweep of {len(index['points'])} points in {len(index['groups'])} ensemble run(s): {index['dir']}")

    frame = sims.load(index["dir"]).frame()  # columns: run, step, member, seed, lr, width, metric, value
    print(frame.head())
    final = frame[frame.step == frame.step.max()]
    table = final[final.metric.isin(["train_acc", "test_acc"])].pivot_table(
        index=["lr", "width"], columns="metric", values="value", aggfunc=["mean", "min"])
    print("\nfinal accuracies per grid point (mean and min over seeds):")
    print(table.round(3).to_string())
    frame.to_csv(Path(index["dir"]) / "frame.csv", index=False)


if __name__ == "__main__":
    main()
