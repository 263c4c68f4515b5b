"""Adding one's own setting: a trained setting and a grid setting registered from one's own module, run with
`sims.run`, read back as DataFrames, and a claim's `RunSpec` (README, "Adding a simulation").

The trained setting: an ensemble of linear models fitted by GD from zero to an underdetermined least-squares
problem; GD converges to the minimum-norm interpolant (`theory.max_margin.min_norm_interpolant`), measured as
the distance to it. The grid setting: the same distance in closed form is 0, so it reports the norm of the
min-norm interpolant against d / n. Writes runs into --out (a temporary directory by default).

    python examples/own_setting.py [--steps 200 --out DIR]
"""

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import sims
from sims.claims import RunSpec
from sims.config import GridConfig, Members, TrainConfig, param
from sims.engine import Env, Task
from sims.gridsim import GridTask
from sims.nn import EnsembleLinear, make_generators
from sims.registry import register, register_grid
from sims.settings.common import squared_loss
from theory.max_margin import min_norm_interpolant


@dataclass(frozen=True)
class Config(TrainConfig):
    """Gaussian least squares with more features than points."""

    n: int = param(20, "training points", low=1)
    d: int = param(60, "features", low=1)


PRESETS = {"ci": dict(steps=200, n_evals=5), "default": dict(steps=2000), "paper": dict(steps=20000, d=600)}


@register("example-min-norm", Config, presets=PRESETS, cpu_runtime="~5 s")
def build(members: Members, env: Env) -> Task:
    """GD from zero on underdetermined least squares reaches the min-norm interpolant (an example setting)."""
    cfg, seeds = members[0], members.seeds
    data = [torch.Generator().manual_seed(16 * s) for s in seeds]  # one data stream per member
    x = torch.stack([torch.randn(cfg.n, cfg.d, generator=g, dtype=torch.float64) for g in data])  # [E, n, d]
    y = torch.stack([torch.randn(cfg.n, 1, generator=g, dtype=torch.float64) for g in data])  # [E, n, 1]
    w_min = torch.stack([torch.from_numpy(min_norm_interpolant(xe.numpy(), ye[:, 0].numpy())) for xe, ye in zip(x, y)])
    model = EnsembleLinear(cfg.d, 1, make_generators(seeds, "init"), bias=False, std=0.0, dtype=torch.float64)
    x, y, w_min = x.to(env.dtype), y.to(env.dtype), w_min.to(env.dtype)

    def evaluate(m) -> dict[str, torch.Tensor]:
        w = m.weight[..., 0]  # [E, d]
        return dict(train_loss=squared_loss(m(x), y), dist_to_min_norm=(w - w_min).norm(dim=1) / w_min.norm(dim=1))

    return Task(model=model, x=x, y=y, loss=squared_loss, evaluate=evaluate)


@dataclass(frozen=True)
class RatioConfig(GridConfig):
    """Norm of the min-norm interpolant of Gaussian data against d / n."""

    n: int = param(20, "training points", low=1)
    n_points: int = param(4, "grid points (d / n from 1.5 to 6)", low=1)


@register_grid("example-min-norm-grid", RatioConfig, cpu_runtime="~1 s",
               presets={"ci": dict(n_points=3), "default": {}, "paper": dict(n=200, n_points=10)})
def build_grid(members: Members, env: Env) -> GridTask:
    """The norm of the min-norm interpolant against d / n, one Monte-Carlo repetition per member."""
    cfg = members[0]
    points = [dict(d=int(r * cfg.n)) for r in np.linspace(1.5, 6.0, cfg.n_points)]

    def evaluate(i, point):
        norms = []
        for s in members.seeds:  # repetition e uses seed + e, drawn afresh at each point i
            rng = np.random.default_rng([s, i])
            X, y = rng.normal(size=(cfg.n, point["d"])), rng.normal(size=cfg.n)
            norms.append(float(np.linalg.norm(min_norm_interpolant(X, y))))
        return dict(norm=norms)

    return GridTask(points=points, evaluate=evaluate)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", type=Path, default=None, help="root of the runs (default: a temporary directory)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="own-setting-"))
    run = sims.run("example-min-norm", preset="ci", seeds=2, out=out, figures=False, threads=1, steps=args.steps,
                   lr=0.01, dtype="float64")
    print(run.frame(last=True).to_string(index=False))
    grid = sims.run("example-min-norm-grid", preset="ci", seeds=3, out=out, figures=False)
    print(grid.frame().pivot_table(index="point", columns="metric", values="value").to_string())
    spec = RunSpec("example-min-norm", overrides=(("lr", 0.01), ("steps", args.steps)), seeds=2)  # pairs, not a dict
    print(f"a claim's runs: {spec.label('ci')}")


if __name__ == "__main__":
    main()
