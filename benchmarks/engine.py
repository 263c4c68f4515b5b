"""Engine overhead: steps per second of `sims.engine.train` on a tiny full-batch model against a bare torch loop.

The dichotomy settings run 1e5+ steps of a model so small that the loop's own overhead (Python bookkeeping,
checks, host-device synchronisation) is what limits them. Both loops do the same forward, backward and SGD
update on the same one-member model (a two-layer ReLU net, d=20, width 32, n=50, float32, 1 thread). The
engine's per-step time is the difference of two runs of different lengths (so set-up, the two evaluations and
the final checkpoint cancel); each is the best of `--repeats` interleaved runs, after a warm-up run.
Target: engine steps/s >= 0.85 x the bare loop's.

Run: python benchmarks/engine.py [--steps 4000] [--repeats 5] [--threads 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from sims import engine
from sims.config import Members, TrainConfig
from sims.nn import TwoLayerNet, make_generators


@dataclasses.dataclass(frozen=True)
class Cfg(TrainConfig):
    pass


def make_task(n=50, d=20, width=32):
    model = TwoLayerNet(d, width, make_generators([0]), init_scale=0.5)
    g = make_generators([0], "data")[0]
    x = torch.randn(1, n, d, generator=g)
    y = torch.sign(torch.randn(1, n, generator=g))

    def loss(out, yy):
        return F.softplus(-yy * out.squeeze(-1)).mean(dim=1)

    return engine.Task(model=model, x=x, y=y, loss=loss, evaluate=lambda m: dict(train_loss=loss(m(x), y)))


def engine_run(steps: int) -> float:
    task = make_task()
    members = Members.from_seeds(Cfg(steps=steps, lr=0.1, n_evals=2, checkpoint_every=10**6), 1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine.train(task, members, Path(tmp), quiet=True)
        return time.perf_counter() - t0


def bare_run(steps: int) -> float:
    task = make_task()
    opt = torch.optim.SGD([p for p in task.model.parameters() if p.requires_grad], lr=0.1)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        task.loss(task.model(task.x), task.y).sum().backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine_run(200), bare_run(200)  # warm-up: imports, allocator, first-call paths
    short, long_ = args.steps // 4, args.steps
    e_short, e_long, bare = [], [], []
    for _ in range(args.repeats):
        e_short.append(engine_run(short))
        e_long.append(engine_run(long_))
        bare.append(bare_run(long_ - short))
    per_engine = (min(e_long) - min(e_short)) / (long_ - short)
    per_bare = min(bare) / (long_ - short)
    out = dict(steps=long_ - short, threads=args.threads, engine_us=per_engine * 1e6, bare_us=per_bare * 1e6,
               ratio=per_bare / per_engine, torch=torch.__version__)
    print(f"engine {out['engine_us']:.1f} us/step, bare loop {out['bare_us']:.1f} us/step: engine runs at "
          f"{out['ratio']:.2f}x the bare loop's speed (target >= 0.85)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
