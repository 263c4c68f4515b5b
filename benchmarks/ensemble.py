"""Ensemble engine speed: batched members against one-member runs, and step FLOP/s against torch.bmm.

(a) 64 small members (d=20, width 32, n=50, 500 full-batch GD steps) trained as one E=64 run against
    64 one-member runs, both through `sims.engine.train`. Target: batched >= 15x faster on a CPU.
(b) A compute-bound size (d=200, width 256, n=200, E=64): the training step's achieved GFLOP/s
    (4 E n d m flops per step: forward and weight-gradient matmuls) as a fraction of `torch.bmm` on the
    same [E, n, d] x [E, d, m] shapes, measured in the same run. Target >= 60%.

Run: python benchmarks/ensemble.py [--device cpu|cuda] [--json PATH]
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
from sims.config import TrainConfig
from sims.nn import TwoLayerNet, make_generators


@dataclasses.dataclass(frozen=True)
class Cfg(TrainConfig):
    pass


def make_task(seeds, n, d, width, device):
    E = len(seeds)
    model = TwoLayerNet(d, width, make_generators(seeds), init_scale=0.1).to(device)
    gens = make_generators(seeds, "data")
    x = torch.stack([torch.randn(n, d, generator=g) for g in gens]).to(device)
    y = torch.stack([torch.sign(torch.randn(n, generator=g)) for g in gens]).to(device)

    def loss(out, yy):
        return F.softplus(-yy * out.squeeze(-1)).mean(dim=1)

    def evaluate(m):
        return dict(train_loss=loss(m(x), y))

    assert model.n_members == E
    return engine.Task(model=model, x=x, y=y, loss=loss, evaluate=evaluate)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train(seeds, n, d, width, steps, device) -> float:
    task = make_task(seeds, n, d, width, device)
    cfg = Cfg(steps=steps, lr=0.1, n_evals=2, checkpoint_every=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        sync(device)
        t0 = time.perf_counter()
        engine.train(task, cfg, Path(tmp), seeds=list(seeds), quiet=True)
        sync(device)
        return time.perf_counter() - t0


def part_a(device, E=64, n=50, d=20, width=32, steps=500) -> dict:
    time_train([0], n, d, width, 5, device)  # warm-up: first-call imports (torch.optim, tqdm) are not timed
    batched = time_train(range(E), n, d, width, steps, device)
    loop = sum(time_train([s], n, d, width, steps, device) for s in range(E))
    return dict(E=E, n=n, d=d, width=width, steps=steps, batched_s=batched, loop_s=loop, speedup=loop / batched)


def part_b(device, E=64, n=200, d=200, width=256, steps=40) -> dict:
    flops_step = 4 * E * n * d * width
    time_train(range(E), n, d, width, 3, device)  # warm-up
    # per-step time = difference of two runs, so set-up, the two evaluations and the final checkpoint
    # (fixed costs of a run, not of a step) cancel
    t_short = min(time_train(range(E), n, d, width, steps // 4, device) for _ in range(2))
    t_long = min(time_train(range(E), n, d, width, steps, device) for _ in range(2))
    step_s = (t_long - t_short) / (steps - steps // 4)
    engine_gflops = flops_step / step_s / 1e9
    a = torch.randn(E, n, d, device=device)
    b = torch.randn(E, d, width, device=device)
    for _ in range(3):
        torch.bmm(a, b)
    reps = 2 * steps
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.bmm(a, b)
    sync(device)
    bmm_gflops = 2 * E * n * d * width * reps / (time.perf_counter() - t0) / 1e9
    return dict(E=E, n=n, d=d, width=width, step_ms=step_s * 1e3, engine_gflops=engine_gflops, bmm_gflops=bmm_gflops,
                fraction=engine_gflops / bmm_gflops)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    args = p.parse_args()
    device = torch.device(args.device)
    a, b = part_a(device), part_b(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}, torch {torch.__version__}")
    print(f"(a) {a['E']} members (d={a['d']}, width={a['width']}, n={a['n']}, {a['steps']} steps): "
          f"batched {a['batched_s']:.2f} s, {a['E']} one-member runs {a['loop_s']:.2f} s, "
          f"speedup {a['speedup']:.1f}x (target >= 15x)")
    print(f"(b) E={b['E']}, d={b['d']}, width={b['width']}, n={b['n']}: training step {b['step_ms']:.1f} ms, "
          f"{b['engine_gflops']:.1f} "
          f"GFLOP/s, torch.bmm {b['bmm_gflops']:.1f} GFLOP/s, fraction {b['fraction']:.0%} (target >= 60%)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(device=name, a=a, b=b), indent=2))


if __name__ == "__main__":
    main()
