"""Grokking of modular addition from a large initialisation with weight decay (Lyu, Jin, Li, Du, Lee, Hu, ICLR 2024).

A two-layer ReLU net on concatenated one-hot pairs, f(a, b) = W_2 relu(W_1 [e_a; e_b] + b_1) (first layer
biased, last layer bias-free: 2-homogeneous in all its parameters), Kaiming-normal fan-in init times alpha
(the authors' HomoMLP), learns (a + b) mod p from a random fraction of the p^2 pairs by full-batch GD with
weight decay on the cross-entropy. From a large alpha the net first memorises the training pairs in its
kernel regime (train accuracy 1, test accuracy at or below chance), and generalises much later, around
t = (1/lambda) log alpha (continuous time lr * step), when the weight decay has shrunk it out of the kernel
regime: grokking, with the delay set by alpha and lambda.

Metrics per evaluation and member: train and test accuracy (argmax) and cross-entropy, ||theta||, and the LC
probe (Humayun et al. 2024) at training pairs, test pairs and random points of the box [0, 1]^{2p} at two
radii (`lc_radius`, `lc_radius_small`). The model state is kept at log- and linearly spaced eval steps
(snapshots/); the partition figure slices the input space through three training pairs (`lc.plane_through`),
draws the exact linear regions (`lc.exact2d`) at init, at memorisation, during and after the transition, and
measures where the region boundaries lie (`lc.region_migration`: shares of the boundary length within delta
of the decision boundary and of the three pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lc.keys import MEANING, PATTERN, lc_keys

from ... import plots, style
from ...config import ConfigError, Members, ProbedConfig, param, with_defaults
from ...data import modular_addition, stack_per_member
from ...engine import SNAPSHOTS_HELP, Env, Task, snapshot_steps
from ...nn import MLP, make_generators
from ...registry import register
from ..common import argmax_accuracy, cross_entropy, make_probe
from .diagonal import DichotomyConfig, records, transition_lines

__all__ = ["Config", "transition_records", "slice_phases", "migration_table", "figures"]


@dataclass(frozen=True)
class Config(with_defaults(DichotomyConfig, alpha=8.0, lr=1.0, weight_decay=1e-3, steps=8000, n_evals=100),
             ProbedConfig):
    """Two-layer ReLU net on one-hot pairs (a, b), label (a + b) mod p, Kaiming-normal (fan-in) weights times alpha,
    biases 0, GD with weight decay; the LC probe at two radii."""

    p: int = param(31, "modulus p (p^2 pairs; input dimension 2p, p classes)", low=2)
    train_fraction: float = param(0.8, "fraction of the p^2 pairs in the training set (the rest is the test set)",
                                  low=0.0, high=1.0, low_open=True, high_open=True)
    width: int = param(256, "hidden units", low=1)
    lc_radius: float = param(0.5, "LC radius r (input units; the one-hot pairs are sqrt(2) or 2 apart): crosses "
                                  "about half of the units at init at the default", low=0.0, low_open=True)
    lc_radius_small: float = param(0.1, "a second, smaller LC radius (about 1/8 of the units crossed at init); 0 = "
                                        "only lc_radius", low=0.0)
    snapshots: int = param(8, SNAPSHOTS_HELP + " (for the partition figure)", low=-1)
    slice_delta: float = param(0.05, "distance (plane units) within which region boundary counts as near the "
                                     "decision boundary or the three pairs in the migration numbers", low=0.0,
                               low_open=True)

    def check(self) -> None:
        super().check()
        if not 3 <= self.n_train <= self.p * self.p - 1:
            raise ConfigError(f"train_fraction={self.train_fraction} gives {self.n_train} of the {self.p ** 2} pairs; "
                              "the training set needs at least 3 pairs and the test set at least 1")

    @property
    def lc_input_dim(self) -> int:
        """Input dimension 2p (one-hot a, one-hot b): the LC probe takes at most this many directions."""
        return 2 * self.p

    @property
    def n_train(self) -> int:
        return round(self.train_fraction * self.p * self.p)


PRESETS = {
    "ci": dict(p=23, width=128, weight_decay=2e-3, steps=3000, n_evals=60, lc_points=30, lc_dirs=8, snapshots=4),
    "default": dict(),
    "paper": dict(p=97, train_fraction=0.4, width=1024, lr=0.1, steps=100_000, n_evals=300),
}


def _model(cfg: Config, seeds, dtype=torch.float32) -> MLP:
    return MLP(2 * cfg.p, cfg.width, cfg.p, 2, make_generators(seeds, "init"), init="kaiming", bias="first",
               init_scale=cfg.alpha, dtype=dtype)


def _radii(cfg: Config) -> list[float]:
    return [cfg.lc_radius] + ([cfg.lc_radius_small] if cfg.lc_radius_small > 0 else [])


def transition_records(run) -> list[dict]:
    """Per member: the rise of the test accuracy from the memorisation step (train accuracy 1) to the end, with
    the turning points of every LC curve (`records`); member 0's also with the migration of region boundary on
    its slice from the memorised to the last snapshot (`Migration.boundary_ratio`)."""
    lc = {k.label: run.metric(str(k)) for k in lc_keys(run.metric_names, total=True) if k.points in plots.LC_SETS}
    recs = records(run, run.metric("test_acc"), run.metric("train_acc"), lc)
    slices = {phase: (step, mig) for phase, step, _, _, _, mig in phase_slices(run, 0, recs[0])}
    if "memorised" in slices and "after" in slices:
        recs[0]["migration"] = {k: dict(step=slices[p][0], boundary_share=slices[p][1].boundary_share,
                                         boundary_ratio=slices[p][1].boundary_ratio, length=slices[p][1].length)
                                for k, p in (("before", "memorised"), ("after", "after"))}
    return recs


def slice_phases(run, member: int = 0, rec: dict | None = None) -> dict[str, int]:
    """Snapshot steps drawn as init / memorised / during / after (member `member`'s transition record, `rec` or the
    run's): step 0, the first snapshot at or after the memorisation step, the snapshot nearest the generalisation
    step, the last."""
    snaps = run.snapshots()
    if not snaps:
        return {}
    rec = rec if rec is not None else (run.summary.get("transitions") or [{}] * run.n_members)[member] or {}
    out = {"init": snaps[0], "after": snaps[-1]}
    mem, gen = rec.get("memorisation_step"), rec.get("generalisation_step")
    later = [s for s in snaps if mem is not None and s >= mem]
    if later:
        out["memorised"] = later[0]
    if gen is not None:
        out["during"] = min(snaps, key=lambda s: abs(s - gen))
    order, seen, phases = ("init", "memorised", "during", "after"), set(), {}
    for k in order:
        if k in out and out[k] not in seen:
            seen.add(out[k])
            phases[k] = out[k]
    return phases


def phase_slices(run, member: int = 0, rec: dict | None = None):
    """Per phase (`slice_phases`): (phase, step, exact partition on the plane through the member's first three
    training pairs, their plane coordinates [3, 2], their labels [3], `lc.region_migration`). `run` is a Run or a
    RunView (`member` indexes the viewed members)."""
    import lc

    phases = slice_phases(run, member, rec)
    for phase, (step, part, coords, labels) in zip(phases, _slice_steps(run, list(phases.values()), member)):
        yield phase, step, part, coords, labels, lc.region_migration(part, run.config.slice_delta, points=coords)


def movie_slices(run):
    """For `sims plot --movie`: (step, exact partition, points [3, 2], labels [3]) of member 0's slice through its
    first three training pairs at every snapshot."""
    return _slice_steps(run, run.snapshots(), 0)


def _slice_steps(run, steps, member: int):
    """(step, exact partition on the plane through the member's first three training pairs, their plane coordinates
    [3, 2], their labels [3]) at each snapshot step of `steps`."""
    import lc
    from lc import exact2d

    c, whole = run.config, getattr(run, "run", run)  # a RunView's snapshots hold every member of its run
    e = run.idx[member] if hasattr(run, "idx") else member
    x, y, _, _ = stack_per_member(modular_addition, make_generators(whole.seeds[e:e + 1], "data"), c.p, c.n_train,
                                  dtype=torch.float64)
    origin, basis, coords = lc.plane_through(x[0, 0], x[0, 1], x[0, 2])
    pad = 0.5 * np.ptp(coords, axis=0).max()
    bounds = tuple((float(lo - pad), float(hi + pad)) for lo, hi in zip(coords.min(0), coords.max(0)))
    model = _model(c, whole.seeds, torch.float64)
    for step in steps:
        state = run.snapshot(step)
        model.load_state_dict({k: v.double() for k, v in state["model"].items()})
        yield step, exact2d.partition(model, origin, basis, bounds=bounds, member=e), coords, y[0, :3].numpy()


def migration_table(run, member: int = 0) -> list[dict]:
    """Per phase: step, number of regions, region-boundary length L on the slice and its shares within
    slice_delta of the decision boundary and of the three training pairs (`lc.region_migration`)."""
    return [dict(phase=phase, step=step, regions=part.count, length=mig.length, boundary_share=mig.boundary_share,
                 points_share=mig.points_share) for phase, step, part, _, _, mig in phase_slices(run, member)]


def partition_figure(run, path):
    """Exact linear regions of member 0 on the plane through three training pairs at init / memorised / during /
    after, with the migration numbers in the titles."""
    from lc.plot import plot_partition

    slices = list(phase_slices(run))
    fig, axes = plots.figure(len(slices), panel=(4.4, 5.0))
    i_of = {s: i for i, s in enumerate(run.steps)}
    for ax, (phase, step, part, coords, labels, mig) in zip(axes[0], slices):
        tr, te = (run.metric(m)[i_of[step], 0] for m in ("train_acc", "test_acc"))
        plot_partition(part, ax=ax, points=coords, labels=labels, style=style.LC,
                       title=f"{phase}: step {step}, train {tr:.2f}, test {te:.2f}\nboundary length shares: "
                             f"near f's boundary {mig.boundary_share:.3f},\nnear the pairs {mig.points_share:.4f}")
    c = run.config
    return plots.save(fig, path, title=f"modular-addition (p={c.p}, width {c.width}, alpha={c.alpha:g}), member 0: "
                      f"linear regions on the plane through three training pairs; black: argmax boundary; shares of "
                      f"region-boundary length within delta={c.slice_delta:g}")


def figures(run) -> list:
    """accuracy.png (with the predicted transition), lc.png (LC at train / test / random points), partition.png."""
    c, lines = run.config, transition_lines(run)
    title = (f"modular-addition: p={c.p}, {c.n_train} training pairs, width {c.width}, alpha={c.alpha:g}, "
             f"lambda={c.weight_decay:g}, lr={c.lr:g}")
    out = [plots.curves_figure(
        run,
        [("accuracy (fraction)", [("train_acc", "train"), ("test_acc", "test")]),
         ("cross-entropy (nats)", [("train_loss", "train"), ("test_loss", "test")]),
         ("parameter norm (parameter units)", [("theta_norm", "||theta||")])],
        run.dir / "figures" / "accuracy.png", title=title,
        log=("cross-entropy (nats)", "parameter norm (parameter units)"),
        hlines={"accuracy (fraction)": [(1 / c.p, "chance 1/p")]}, vlines=lines),
        plots.lc_figure(run, run.dir / "figures" / "lc.png", vlines=lines,
                        title=f"modular-addition local complexity (P={c.lc_dirs}, {c.lc_points} points per set)")]
    if slice_phases(run):
        out.append(partition_figure(run, run.dir / "figures" / "partition.png"))
    return out


def memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: the p^2 one-hot pairs [p^2, 2p] (float64 while drawn), parameters with their copies
    (`sims.memory.PARAM_COPIES`), activations and logits of a full evaluation on every pair, and one LC chunk."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    pairs, params = c.p * c.p, 2 * c.p * c.width + c.width + c.width * c.p
    return dict(data=E * pairs * 2 * c.p * (itemsize + 8), parameters=E * PARAM_COPIES * params * itemsize,
                activations=4 * E * pairs * (c.width + c.p) * itemsize, lc=E * 2**20 * 8)


METRICS = {
    "train_acc": "fraction of training pairs whose largest logit is (a + b) mod p (fraction)",
    "test_acc": "fraction of held-out pairs whose largest logit is (a + b) mod p (fraction)",
    "train_loss": "mean cross-entropy on the training pairs (nats)",
    "test_loss": "mean cross-entropy on the held-out pairs (nats)",
    "theta_norm": "||theta||_2 over every parameter (parameter units)",
    PATTERN: MEANING,
}


ATLAS = dict(label="modular addition, two-layer ReLU MLP (Lyu et al. 2024)", order=4)  # its row of `sims atlas`


@register("modular-addition", Config, presets=PRESETS, cpu_runtime="~2 min (LC ~20 s of it)", figures=figures,
          transitions=transition_records, memberwise=("lr", "weight_decay"), memory=memory, metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """Two-layer ReLU net on modular addition from a large init with weight decay: memorise, then grok (Lyu et al. 2024).

    Shows: train accuracy 1 by step ~200 with test accuracy at or below chance (kernel regime), then test
    accuracy rising to ~1 about 17x later, around t = (1/lambda) log alpha; LC at train, test and random
    points and the linear regions on a slice through three training pairs before and after.
    Command: `sims run modular-addition` (default preset, ~2 min on 2 CPU cores); claims: `sims reproduce lyu2024`.
    """
    cfg, seeds = members[0], members.seeds
    x, y, xt, yt = stack_per_member(modular_addition, make_generators(seeds, "data"), cfg.p, cfg.n_train,
                                    dtype=env.dtype, device=env.device)
    model = _model(cfg, seeds, env.dtype).to(env.device)

    def evaluate(m: MLP) -> dict[str, torch.Tensor]:
        out, out_t = m(x), m(xt)
        norm2 = sum(p.pow(2).flatten(1).sum(dim=1) for p in m.parameters())
        return dict(train_acc=argmax_accuracy(out, y), test_acc=argmax_accuracy(out_t, yt),
                    train_loss=cross_entropy(out, y), test_loss=cross_entropy(out_t, yt), theta_norm=norm2.sqrt())

    return Task(model=model, x=x, y=y, loss=cross_entropy, evaluate=evaluate,
                probe=make_probe(cfg, seeds, train=x, test=xt, radius=_radii(cfg)),
                snapshot_steps=snapshot_steps(cfg.steps, cfg.n_evals, cfg.snapshots))
