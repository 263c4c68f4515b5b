"""XOR cluster data: benign overfitting reached through grokking (Xu, Wang, Frei, Vardi, Hu, ICLR 2024).

A two-layer ReLU net f(x) = sum_j a_j relu(<w_j, x>) with the second layer fixed at a_j = +-1/sqrt(m),
small Gaussian init of W, trained by full-batch GD on the logistic loss over XOR cluster data with
label noise eta, in high dimension (d >> n). The paper proves: after the first (large) GD step the net
fits every noisy training label but its test accuracy is near 50% (a non-generalising linear
classifier: catastrophic overfitting); later, still fitting every noisy label, its test error falls to
near eta (near-optimal: benign overfitting). The transition is a grokking curve.

Besides accuracies and losses, the run records the KKT residual of the parameter max-margin problem
(f is 1-homogeneous in W), the agreement of sign f with the linear classifier sign <sum_j a_j w_j, x> on
test points (near 1 while the net is a linear classifier, near 1/2 once it solves XOR), keeps the model state at a
few steps (snapshots/) and draws the exact linear regions (`lc.exact2d`) of member 0 on the plane spanned by mu_1
and mu_2 before, during and after the transition (found by `sims.transitions`).

What the partition of this net can and cannot show. The net has no biases, so it is positively homogeneous: every
unit's zero set is a hyperplane through 0 and every linear region is a cone through 0. On a plane through 0 the
regions are wedges with their apex at 0, and distances scale with |x|: a wedge edge at angle theta from a point x
passes at distance |x| sin theta from it. Two slices are measured per member (`transition_records`):

- 'migration': the (mu_1, mu_2) plane. It shows where the wedges' edges lie relative to the cluster means and the
  decision boundary, but it holds no training point (each point is mu + xi with |xi| ~ sqrt(d) >> ||mu||), so
  "regions leave the training points" cannot be measured there.
- 'migration_points_plane': the plane through 0 spanned by two training points (`points_plane`: the first
  unflipped point of each label). It contains both points, and it meets each cone in a wedge or not at all. The
  share of region boundary within delta of the two points measures the cone boundaries' angular distance to them
  (delta / |x| ~ 0.1 rad), not a distance at a fixed scale; the LC probe at radius r sees the same cones, those
  within an angle ~ r / |x| of the point. The atlas reads hypothesis (b) from this plane.

What neither slice can show: anything at a scale. The partition looks the same at every |x| along a ray, so regions
cannot crowd at a point or a finite distance from 0; "near the data" means "at a small angle to the data", and a
2-D slice sees only the cones it cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lc.keys import MEANING, PATTERN, lc_name

from ... import metrics, plots, style, transitions
from ...config import Members, param, with_defaults
from ...data import for_members, stack_per_member, xor_clusters
from ...engine import SNAPSHOTS_HELP, Env, Task, snapshot_steps
from ...nn import TwoLayerNet, make_generators
from ...registry import register
from ..common import TwoLayerConfig, logistic_loss, make_probe, sign_accuracy, two_layer_memory


@dataclass(frozen=True)
class Config(with_defaults(TwoLayerConfig, n=200, d=16000, noise_rate=0.1, width=200, steps=300, lc_radius=12.5)):
    """XOR cluster data, two-layer ReLU net with a fixed second layer, full-batch GD, logistic loss.
    lc_radius ~ 0.1 sqrt(d) (the noise norm is ~sqrt(d)) crosses ~16% of the units at init."""

    mu_norm: float = param(22.0, "norm of each cluster mean, ||mu_1|| = ||mu_2||", low=0.0)
    snapshots: int = param(3, SNAPSHOTS_HELP + " (the partition figure and the migration need 0, 1 and the last)",
                           low=-1)


PRESETS = {
    # the smallest size found that shows both phases within seconds (n = 40-100 or d <= 8000 did not)
    "ci": dict(n=150, d=12000, mu_norm=20.0, width=100, lr=0.1, n_test=400, steps=30, n_evals=10, lc_points=30,
               lc_dirs=8, lc_radius=11.0),
    "default": dict(),
    "paper": dict(n=400, d=64000, mu_norm=37.0, width=1000, n_test=5000, steps=2000, n_evals=100,
                  lc_radius=25.0),
}


def _member_data(run, member: int = 0):
    """A member's training data and labels (regenerated from its seed and config): x [n, d], y [n], y_clean [n]."""
    c = run.members[member]
    x, y, y_clean = stack_per_member(xor_clusters, make_generators([c.seed], "data"), c.n, c.d, c.mu_norm,
                                     c.noise_rate, dtype=torch.float64)
    return x[0], y[0], y_clean[0]


def transition(run) -> transitions.Crossing | None:
    """The generalisation transition: where the member-mean test accuracy has moved half the way from its
    value after step 1 (catastrophic overfitting) to its final value (`sims.transitions.fraction_step`)."""
    acc = run.metric("test_acc")
    if 1 not in run.steps or not np.isfinite(acc).all(axis=0).any():
        return None
    return transitions.fraction_step(run.steps, np.nanmean(acc[:, np.isfinite(acc).all(axis=0)], axis=1), 0.5,
                                     start=1)


def _partition(run, step: int, member: int, basis: torch.Tensor, bound: float):
    """The exact linear regions (`lc.exact2d`) of a member at a snapshot step on the plane through 0 spanned by the
    orthonormal rows of basis [2, d], over [-bound, bound]^2 (plane coordinates = inner products with the rows)."""
    from lc import exact2d

    c = run.config
    model = TwoLayerNet(c.d, c.width, make_generators(run.seeds), init_scale=run.members.values("init_scale"),
                        dtype=torch.float64)
    state = run.snapshot(step)
    model.load_state_dict({k: v.double() for k, v in state["model"].items()})
    return exact2d.partition(model, torch.zeros(c.d, dtype=torch.float64), basis, bounds=((-bound, bound),) * 2,
                             member=member)


def _slice(run, step: int, member: int):
    """The exact linear regions of a member at a snapshot step on the plane of mu_1, mu_2 through 0, over
    [-1.8 ||mu||, 1.8 ||mu||]^2 (mu_1 = ||mu|| e_1, mu_2 = ||mu|| e_2, `sims.data.xor_clusters`)."""
    basis = torch.zeros(2, run.config.d, dtype=torch.float64)
    basis[0, 0] = basis[1, 1] = 1.0
    return _partition(run, step, member, basis, 1.8 * run.config.mu_norm)


def points_plane(run, member: int) -> dict | None:
    """The plane through 0 spanned by two of the member's training points: i, the first with noisy label +1 that is
    not flipped (a +-mu_1 point), and j, the first with label -1 not flipped (a +-mu_2 point). Once both are fitted
    (from step 1 on, Xu et al.) the decision boundary crosses the plane between them. None without such a pair.

    Returns dict(points=[i, j], basis [2, d] (x_i / |x_i|, then the unit part of x_j orthogonal to it),
    coords [2, 2] (the two points' plane coordinates: x_k = coords[k] @ basis), bound = 1.5 max |x_k| (the
    slice is [-bound, bound]^2), delta = 0.1 mean |x_k| (~ lc_radius: the noise norm ~ sqrt(d) dominates |x|)).
    """
    x, y, y_clean = _member_data(run, member)
    kept = y == y_clean
    pos, neg = torch.nonzero(kept & (y > 0))[:, 0], torch.nonzero(kept & (y < 0))[:, 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    i, j = int(pos[0]), int(neg[0])
    e0 = x[i] / x[i].norm()
    rest = x[j] - (x[j] @ e0) * e0
    basis = torch.stack([e0, rest / rest.norm()])  # [2, d]
    norms = x[[i, j]].norm(dim=1)
    return dict(points=[i, j], basis=basis, coords=(x[[i, j]] @ basis.T).numpy(), bound=1.5 * float(norms.max()),
                delta=0.1 * float(norms.mean()))


def _migration(run, member: int, slice_at=None, delta: float | None = None, points=None) -> dict | None:
    """`lc.region_migration` of the member's slice (`slice_at(step)`, default the (mu_1, mu_2) plane with delta =
    0.1 ||mu||) after step 1 (before the transition) and at the last snapshot: the share of region boundary near
    the decision boundary and its ratio to the area, and near `points` [k, 2] (plane coordinates) when given."""
    from lc import region_migration

    snaps = run.snapshots()
    if 1 not in snaps or len(snaps) < 2:
        return None
    if slice_at is None:
        slice_at, delta = (lambda s: _slice(run, s, member)), 0.1 * run.config.mu_norm
    out = {}
    for phase, step in (("before", 1), ("after", snaps[-1])):
        m = region_migration(slice_at(step), delta, points)
        out[phase] = dict(step=step, boundary_share=m.boundary_share, boundary_ratio=m.boundary_ratio,
                          length=m.length)
        if points is not None:
            out[phase].update(points_share=m.points_share, points_ratio=m.points_ratio)
    return out


def points_plane_migration(run, member: int) -> dict | None:
    """`_migration` on the plane through 0 and two training points (`points_plane`), near the decision boundary and
    near the two points (delta = 0.1 mean |x|), with the plane: points [i, j], coords [[a, b], [a, b]], delta."""
    plane = points_plane(run, member)
    if plane is None:
        return None
    mig = _migration(run, member, lambda s: _partition(run, s, member, plane["basis"], plane["bound"]),
                     plane["delta"], plane["coords"])
    if mig is None:
        return None
    return {**mig, "points": plane["points"], "coords": plane["coords"].tolist(), "delta": plane["delta"]}


def transition_records(run) -> list[dict]:
    """Per member: the transition record (`sims.transitions.record`) measured from step 1 (after the
    catastrophic first step), with LC turning points at train / test / random points and the migration of
    region boundary from step 1 to the end on the (mu_1, mu_2) plane ('migration') and on the plane through 0 and
    two training points ('migration_points_plane', also near those points)."""
    if 1 not in run.steps:
        return [None] * run.n_members
    lc = {s: run.metric(lc_name(s)) for s in plots.LC_SETS if lc_name(s) in run.metric_names}
    out = []
    for e in range(run.n_members):
        rec = transitions.record(run.steps, test=run.metric("test_acc")[:, e], train=run.metric("train_acc")[:, e],
                                 lc={s: v[:, e] for s, v in lc.items()}, start=1, time_per_step=run.members[e].lr)
        rec["migration"] = _migration(run, e) if run.snapshots() else None
        rec["migration_points_plane"] = points_plane_migration(run, e) if run.snapshots() else None
        out.append(rec)
    return out


def transition_steps(run) -> dict[str, int]:
    """The snapshot steps drawn as init / before / during / after the transition (member-mean test accuracy).

    before: step 1 (fitted, not generalising); after: the last step; during: the snapshot step in between
    nearest (in log step) to the transition step.
    """
    snaps = [s for s in run.snapshots() if s in run.steps]
    if not snaps:
        return {}
    out = {"init": 0, "before": 1, "after": max(snaps)}
    cross = transition(run)
    between = [s for s in snaps if 1 < s < max(snaps)]
    if between and cross is not None:
        out["during"] = min(between, key=lambda s: abs(np.log1p(s) - np.log1p(cross.step)))
    order = ("init", "before", "during", "after")
    return {k: out[k] for k in order if k in out and out[k] in snaps}


def partition_figure(run, path):
    """Exact linear regions of member 0 on the plane of mu_1, mu_2 at init / before / during / after."""
    from lc.plot import plot_partition

    c, steps = run.config, transition_steps(run)
    x, y, y_clean = _member_data(run)
    fig, axes = plots.figure(len(steps), panel=(4.4, 5.0))
    flipped = (y != y_clean).numpy()
    for ax, (phase, s) in zip(axes[0], steps.items()):
        part = _slice(run, s, 0)
        i = list(run.steps).index(s)
        tr, te = run.metric("train_acc")[i, 0], run.metric("test_acc")[i, 0]
        plot_partition(part, ax=ax, points=x[:, :2].numpy(), labels=y.numpy(), marked=flipped,
                       marked_label="flipped label", title=f"{phase}: step {s}\ntrain {tr:.2f}, test {te:.2f}",
                       style=style.LC)
        ax.set_xlabel("<x, mu_1> / ||mu|| (input units)")
        ax.set_ylabel("<x, mu_2> / ||mu|| (input units)")
    return plots.save(fig, path, title=f"xor-cluster (n={c.n}, d={c.d}, ||mu||={c.mu_norm:g}), member 0: linear "
                      "regions on the plane spanned by mu_1, mu_2 through 0, coloured by the predicted sign (pale "
                      "near the decision boundary, black); training points projected, colour = noisy label")


def movie_slices(run):
    """For `sims plot --movie`: (step, exact partition, points [n, 2], labels [n]) of member 0 on the plane of mu_1,
    mu_2 at every snapshot, with its training points and noisy labels."""
    x, y, _ = _member_data(run)
    for s in run.snapshots():
        yield s, _slice(run, s, 0), x[:, :2].numpy(), y.numpy()


def figures(run) -> list:
    c = run.config
    title = f"xor-cluster: n={c.n}, d={c.d}, ||mu||={c.mu_norm}, eta={c.noise_rate}, m={c.width}, lr={c.lr}"
    out = [plots.curves_figure(
        run,
        [("accuracy (fraction)", [("train_acc", "train (noisy labels)"), ("test_acc", "test (noisy labels)"),
                       ("test_acc_clean", "test (clean labels)")]),
         ("logistic loss (nats)", [("train_loss", "train"), ("test_loss", "test")]),
         ("KKT residual (relative, unitless)", [("kkt_residual", "parameter max-margin problem (theory.kkt)")])],
        run.dir / "figures" / "accuracy.png", title=title,
        log=("logistic loss (nats)", "KKT residual (relative, unitless)"),
        hlines={"accuracy (fraction)": [(1 - c.noise_rate, "1 - eta (Bayes, noisy)"), (0.5, "chance")]}),
        plots.lc_figure(run, run.dir / "figures" / "lc.png",
                        title=f"xor-cluster local complexity (r={c.lc_radius}, P={c.lc_dirs})")]
    if run.snapshots() and transition_steps(run):
        out.append(partition_figure(run, run.dir / "figures" / "partition.png"))
    return out


METRICS = {
    "linear_agreement": "share of test points where sign f agrees with the linear classifier sign <sum_j a_j w_j, x> "
                        "(fraction)",
    "train_acc": "fraction of training points with sign f(x) = y, noisy labels (fraction)",
    "test_acc": "fraction of fresh test points with sign f(x) = y, noisy labels (fraction)",
    "test_acc_clean": "test accuracy against the clean labels (fraction)",
    "train_loss": "mean logistic loss on the training points (nats)",
    "test_loss": "mean logistic loss on the test points, noisy labels (nats)",
    "weight_norm": "||W||_F of the first layer (weight units)",
    "kkt_residual": "KKT residual of the parameter max-margin problem (relative, 0 at a KKT point)",
    PATTERN: MEANING,
}


ATLAS = dict(label="XOR clusters (Xu et al. 2024)", order=0)  # its row of `sims atlas`


@register("xor-cluster", Config, presets=PRESETS, cpu_runtime="~2 min", figures=figures,
          transitions=transition_records, memory=two_layer_memory,
          memberwise=("init_scale", "noise_rate", "mu_norm", "lr", "weight_decay"), metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """XOR clusters: catastrophic then benign overfitting through grokking (Xu et al. 2024).

    Shows: after step 1 the net fits every noisy training label with test accuracy near 50%; later
    test accuracy on noisy labels rises towards 1 - eta while training accuracy stays 100%.
    Figures: accuracy curves and KKT residual, LC at train / test / random points, and the exact linear
    regions on the (mu_1, mu_2) plane before, during and after the transition.
    Command: `sims run xor-cluster` (default preset, ~2 min on 2 CPU cores); claims: `sims reproduce xu2024`.
    """
    cfg, seeds, dev, dtype = members[0], members.seeds, env.device, env.dtype
    gens = make_generators(seeds, "data")
    x, y, _ = for_members(lambda c, g: xor_clusters(c.n, c.d, c.mu_norm, c.noise_rate, generator=g), members, gens,
                          dtype=dtype, device=dev)
    xt, yt, yt_clean = for_members(lambda c, g: xor_clusters(c.n_test, c.d, c.mu_norm, c.noise_rate, generator=g),
                                   members, gens, dtype=dtype, device=dev)
    model = TwoLayerNet(cfg.d, cfg.width, make_generators(seeds, "init"), act="relu",
                        init_scale=members.values("init_scale"), dtype=dtype).to(dev)
    x64, y64 = x.double(), y.double()
    xx64 = torch.bmm(x64, x64.transpose(1, 2))  # [E, n, n]

    def evaluate(m) -> dict[str, torch.Tensor]:
        W, a = m[0].weight, m[2].weight[..., 0]  # [E, d, m], [E, m]
        out, out_t = m(x), m(xt)
        gram, q = metrics.margin_gram(x64, y64, W.double(), a.double(), 0.0, xx64)
        v = torch.einsum("edm,em->ed", W, a)  # the net's effective linear direction sum_j a_j w_j
        linear = torch.sign(torch.einsum("etd,ed->et", xt, v))
        return dict(
            linear_agreement=(torch.sign(out_t[..., 0]) == linear).to(torch.float64).mean(dim=1),
            train_acc=sign_accuracy(out, y), test_acc=sign_accuracy(out_t, yt),
            test_acc_clean=sign_accuracy(out_t, yt_clean),
            train_loss=logistic_loss(out, y), test_loss=logistic_loss(out_t, yt),
            weight_norm=W.flatten(1).norm(dim=1), kkt_residual=metrics.kkt_residuals(gram, q),
        )

    return Task(model=model, x=x, y=y, loss=logistic_loss, evaluate=evaluate,
                probe=make_probe(cfg, seeds, train=x, test=xt),
                snapshot_steps=snapshot_steps(cfg.steps, cfg.n_evals, cfg.snapshots))
