"""Grokking and the three phases of local complexity on images (Humayun, Balestriero, Baraniuk 2024; the large-init
MLP of Omnigrok, Liu, Michaud, Tegmark 2022), and the small conv net of the same experiments.

`image-grokking`: an MLP (width 200, 3 Linear layers) with every parameter multiplied by alpha = 8 at init,
trained with AdamW on 1000 images against one-hot targets (mean squared error), batch 200. Humayun et al. report
that LC around the training points first falls, then rises while the net memorises, then falls again as the
linear regions migrate away from the data towards the decision boundary, and that this final descent comes
with delayed generalisation (grokking). The run keeps snapshots; when it completes, each member's transition
record (summary.json) holds its LC turning points and, on the plane through three of its training points
(`sims.settings.images.slices`), the migration numbers at init, the LC minimum, the LC peak and the end, and LC
against exact region counts at the end.

`image-cnn`: the small conv net (`sims.nn.SmallCNN`) on digits, with or without batch norm; LC counts its
convolution units (channels x positions).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import torch

from ... import plots, style, transitions
from ...config import Members, with_defaults
from ...engine import Env, Task
from ...nn import make_generators
from ...registry import register
from . import slices
from .base import (IMAGE_METRICS, MIN_TURN, ImageConfig, curves_figure, image_memory, image_task, lc_name, lc_peak,
                     make_model, member_images)

MEMBERWISE = ("init_scale", "lr", "weight_decay", "label_noise", "flip_from", "flip_to", "flip_fraction")

PRESETS = {
    # seconds: tiny sizes, no phases expected
    "ci": dict(n_train=100, n_test=100, width=32, steps=200, n_evals=8, lc_points=30, lc_dirs=8, lc_radii="0.2",
               snapshots=-1, lr=1e-2),
    # MNIST-1D, found by the parameter search described in papers/humayun2024.md (lr 3e-3, not Omnigrok's 1e-3)
    "default": dict(dataset="mnist1d", lc_radius=0.05, lc_radii="0.2", lc_points=300, snapshots=-1),
    # the published MNIST setup (needs the MNIST files: --set data_dir=DIR); Humayun et al.'s radii
    "paper": dict(dataset="mnist", depth=4, lr=1e-3, weight_decay=0.01, steps=100_000, n_evals=100, n_test=10000,
                  dtype="float64", lc_radius=0.05, lc_radii="0.1,0.5,1,5", lc_points=1000, snapshots=-1),
}

CNN_PRESETS = {
    "ci": dict(n_train=100, n_test=100, steps=30, n_evals=5, lc_points=20, lc_dirs=8),
    "default": dict(),
    "paper": dict(steps=25000, init_scale=8.0, lr=3e-3, weight_decay=0.05, n_evals=30),
}


@dataclass(frozen=True)
class CNNConfig(with_defaults(ImageConfig, dataset="digits", arch="cnn", init_scale=1.0, lr=1e-3, weight_decay=0.01,
                              steps=2000, n_evals=20, lc_radius=0.1, lc_points=300)):
    """The small conv net on digits (alpha 1, AdamW lr 1e-3, weight decay 0.01), LC at radius 0.1."""


# --------------------------------------------------------------------------------------------- slices of a run

def snapshot_model(run, step: int) -> torch.nn.Module:
    """The run's ensemble model (float64) with the state kept at `step` (snapshots/step-<step>.pt)."""
    model = make_model(run.members, torch.float64)
    state = run.snapshot(step)["model"]
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def snapshots(run) -> list[int]:
    """The run's snapshot steps that are also eval steps, sorted."""
    evals = set(run.steps.tolist())
    return [s for s in run.snapshots() if s in evals]


def member_slice(run, e: int) -> dict:
    """Member e's slice: the plane through three of its training points of three classes (drawn from its 'eval'
    generator), with the points' indices and labels (`image_slices.plane`)."""
    c = run.members[e]
    x, y, _, _, _ = member_images(c, make_generators([c.seed], "data")[0])
    idx = slices.pick_points(y.numpy(), make_generators([c.seed], "eval")[0])
    return dict(slices.plane(x[idx].numpy()), index=idx, labels=y[idx].numpy())


def nearest_step(options: list[int], step: float) -> int:
    """The step among `options` nearest to `step` on a log(1 + step) scale."""
    return min(options, key=lambda s: abs(np.log1p(s) - np.log1p(step)))


def phase_steps(run, e: int) -> dict[str, int]:
    """Member e's snapshot steps nearest (in log step) to init, its LC minimum before the peak, its LC peak
    (`images.lc_peak`) and the end (LC at train points, lc_radius)."""
    snaps, peak = snapshots(run), lc_peak(run)[e][0]
    lc = run.metric(lc_name(run.config))[:, e]
    before = int(np.flatnonzero(run.steps == peak)[0]) + 1
    want = dict(init=0, min=int(run.steps[int(np.argmin(lc[:before]))]), peak=peak, end=int(run.steps[-1]))
    return {k: nearest_step(snaps, v) for k, v in want.items()}


def slice_record(run, e: int) -> dict:
    """Member e's slice (JSON-able): the phase snapshot steps (`phase_steps`), the migration numbers
    (`image_slices.migration`) at every snapshot for member 0 and at the LC peak and the end for the others
    ('series': {step: numbers}), and LC against exact counts at the end ('exact': Spearman correlations, means and
    the per-point counts)."""
    sl, phases = member_slice(run, e), phase_steps(run, e)
    steps = snapshots(run) if e == 0 else sorted({phases["peak"], phases["end"]})
    series = {}
    for s in steps:
        model = snapshot_model(run, s).member(e)
        part = slices.partition(model, sl)
        series[s] = slices.migration(part, sl)
    exact = slices.lc_vs_exact(model, part, sl, n_dirs=run.config.lc_dirs,
                               generator=make_generators([run.members[e].seed], "eval")[0])
    summary = {k: (v.tolist() if isinstance(v, np.ndarray) else float(v)) for k, v in exact.items()}
    summary.update(exact_mean=float(exact["exact"].mean()), lc_plane_mean=float(exact["lc_plane"].mean()),
                   lc_full_mean=float(exact["lc_full"].mean()), n=len(exact["exact"]))
    return dict(points=[int(i) for i in sl["index"]], extent=sl["extent"], phases=phases,
                series={str(s): v for s, v in series.items()}, exact=summary)


def migration_at(rec: dict, phase: str) -> dict:
    """The migration numbers of a slice record at a phase (init, min, peak, end), or {} when not measured there;
    values that summary.json holds as null (undefined ratios) come back as NaN."""
    row = rec["series"].get(str(rec["phases"][phase]), {})
    return {k: math.nan if v is None else v for k, v in row.items()}


def transition_records(run, min_change: float = 0.0) -> list[dict]:
    """Per member: `sims.transitions.record` of test and train accuracy and LC (at lc_radius) at train, test and
    random points (a test curve moving less than `min_change` has no transition); with snapshots of an MLP, also
    'slices' (`slice_record`)."""
    c = run.config
    lc = {s: run.metric(lc_name(c, s)) for s in plots.LC_SETS if lc_name(c, s) in run.metric_names}
    out = []
    for e in range(run.n_members):
        rec = transitions.record(run.steps, test=run.metric("test_acc")[:, e], train=run.metric("train_acc")[:, e],
                                 lc={s: v[:, e] for s, v in lc.items()}, min_rel_change=MIN_TURN,
                                 min_change=min_change)
        if c.arch == "mlp" and lc and len(snapshots(run)) >= 2:
            rec["slices"] = slice_record(run, e)
            rec["migration"] = _migration(rec) if e == 0 else None
        out.append(rec)
    return out


def _migration(rec: dict) -> dict | None:
    """Member 0's migration across its transition, as the atlas reads it: the slice's numbers at the snapshot
    nearest the memorisation step ('before') and at the last one ('after'); None when the training set is never
    fitted, the two snapshots coincide, or a ratio is undefined there."""
    series, mem = rec["slices"]["series"], rec.get("memorisation_step")
    steps = sorted(int(s) for s in series)
    if mem is None or len(steps) < 2:
        return None
    picked = (("before", nearest_step(steps, mem)), ("after", steps[-1]))
    out = {k: dict(step=s, boundary_share=series[str(s)].get("boundary_share"),
                   boundary_ratio=series[str(s)].get("boundary_ratio")) for k, s in picked}
    ok = picked[0][1] < picked[1][1] and all(v["boundary_ratio"] is not None and math.isfinite(v["boundary_ratio"])
                                             for v in out.values())
    return out if ok else None


# ---------------------------------------------------------------------------------------------------- figures

def _migration_title(phase: str, s: int, m: dict) -> str:
    return (f"{phase}: step {s}\nnear boundary {m['boundary_share']:.2f} "
            f"(x{m['boundary_ratio']:.2f} of area), near points {m['points_share']:.3f} (x{m['points_ratio']:.2f})")


def partition_figure(run, path):
    """Member 0's exact linear regions on its slice at init, the LC minimum, the LC peak and the end, with the
    migration numbers of its transition record."""
    from lc.plot import plot_partition

    rec, sl = run.summary["transitions"][0]["slices"], member_slice(run, 0)
    fig, axes = plots.figure(len(rec["phases"]), panel=(4.6, 5.0))
    for ax, (phase, s) in zip(axes[0], rec["phases"].items()):
        part = slices.partition(snapshot_model(run, s).member(0), sl)
        plot_partition(part, ax=ax, title=_migration_title(phase, s, migration_at(rec, phase)), style=style.LC)
        ax.scatter(*sl["coords"].T, s=60, c="w", edgecolors="k", linewidths=1.2, zorder=5)
        for (a, b), label in zip(sl["coords"], sl["labels"]):
            ax.annotate(str(label), (a, b), xytext=(5, 5), textcoords="offset points", fontsize=9, zorder=6)
        ax.tick_params(labelsize=7)
        ax.title.set_fontsize(8)
    c = run.config
    return plots.save(fig, path, title=f"{run.sim_name} ({c.dataset}), member 0: linear regions on the plane through "
                      f"training points {rec['points']} (white, with their labels); decision boundary black; 'near' = "
                      f"within {slices.DELTA_BOUNDARY:g} (boundary) / {slices.DELTA_POINTS:g} (points) of the extent")


def migration_figure(run, path):
    """Member 0's migration numbers at every snapshot (its transition record), beside its train LC: the shares of
    region-boundary length near the decision boundary and near the three points, raw and as a ratio to the share of
    area."""
    rec = run.summary["transitions"][0]["slices"]
    snaps = sorted(int(s) for s in rec["series"])
    col = lambda k: np.array([np.nan if rec["series"][str(s)][k] is None else rec["series"][str(s)][k] for s in snaps])
    fig, axes = plots.figure(3)
    plots.band(axes[0, 0], snaps, col("boundary_ratio"), "near the decision boundary", marker="o")
    plots.band(axes[0, 0], snaps, col("points_ratio"), "near the three points", marker="o")
    style.reference(axes[0, 0], "spread evenly", y=1.0)
    plots.finish(axes[0, 0], "share of boundary length / share of area (unitless)", steps=snaps)
    for k, label in (("boundary_share", "length share, boundary"), ("boundary_area", "area share, boundary"),
                     ("points_share", "length share, points"), ("points_area", "area share, points")):
        plots.band(axes[0, 1], snaps, col(k), label, marker=".")
    plots.finish(axes[0, 1], "share within delta (fraction of the slice)", steps=snaps)
    lc = run.metric(lc_name(run.config))[:, 0]
    plots.band(axes[0, 2], run.steps, lc, "LC at train points")
    axes[0, 2].plot(snaps, col("regions") / col("regions")[0] * lc[0], "o", label="regions on the slice (x LC(0) / "
                    "regions(0))")
    plots.finish(axes[0, 2], "LC at train points, member 0 (crossed units per neighbourhood)", steps=run.steps)
    return plots.save(fig, path, title=f"{run.sim_name} ({run.config.dataset}), member 0: where the region "
                      f"boundaries are on the plane through training points {rec['points']}")


def exact_figure(run, path):
    """Member 0 at the end: exact region counts in discs on its slice against LC (in-plane and full-space frames),
    from its transition record."""
    ex = run.summary["transitions"][0]["slices"]["exact"]
    fig, axes = plots.figure(2, panel=(4.6, 4.2))
    for ax, key, what in ((axes[0, 0], "plane", "P = 2, the plane's directions"),
                          (axes[0, 1], "full", f"P = {run.config.lc_dirs} random directions in input space")):
        ax.scatter(ex["exact"], ex[f"lc_{key}"], s=8, alpha=0.6)
        ax.set_xlabel(f"regions meeting the disc of radius rho = {ex['rho']:.3g} (count, exact)")
        plots.finish(ax, "LC at radius rho (crossed units per neighbourhood)",
                     title=f"{what}: Spearman {ex[f'spearman_{key}']:.3f}")
    return plots.save(fig, path, title=f"{run.sim_name} ({run.config.dataset}), member 0, step {run.steps[-1]}: LC "
                      f"against the exact number of linear regions at {ex['n']} points of the slice")


def movie_slices(run):
    """For `sims plot --movie`: (step, exact partition, points [3, 2], labels [3]) of member 0's slice through three
    of its training points (`member_slice`) at every snapshot."""
    sl = member_slice(run, 0)
    for s in run.snapshots():
        yield s, slices.partition(snapshot_model(run, s).member(0), sl), sl["coords"], sl["labels"]


def figures(run) -> list:
    d = run.dir / "figures"
    out = [curves_figure(run, d / "curves.png"), plots.lc_figure(run, d / "lc.png", title=f"{run.sim_name} LC")]
    if "slices" in (run.summary.get("transitions") or [{}])[0]:
        out += [partition_figure(run, d / "partition.png"), migration_figure(run, d / "migration.png"),
                exact_figure(run, d / "exact.png")]
    return out


# ------------------------------------------------------------------------------------------ the simulations

METRICS = IMAGE_METRICS


# its atlas row: evaluations dense enough that at least ~10 fall between memorisation (~5400) and the transition
# (~12,600), so no verdict rests on one evaluation interval; snapshots at K = 12 log- and lin-spaced steps
ATLAS = dict(label="image MLP at alpha 8, MNIST-1D (Humayun et al. 2024; Omnigrok)", order=5,
             overrides=(("n_evals", 140), ("snapshots", 12)))


@register("image-grokking", ImageConfig, presets=PRESETS, cpu_runtime="~2 min per member (40k steps)",
          figures=figures, memberwise=MEMBERWISE, transitions=transition_records, memory=image_memory, metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """MLP on images from a large init: LC falls, rises, falls again; the last fall comes with grokking (Humayun 2024).

    Shows: LC at the training points goes through a descent, an ascent while the training set is memorised, and a
    final descent during which test accuracy keeps rising (MNIST-1D: from ~0.27 at the LC peak to ~0.48) and the
    region boundaries gather at the decision boundary and leave the training points (migration numbers per
    snapshot). Ablations as overrides: --set dataset=digits (weight_decay 0.02, lc_radius 0.1), depth=4, width=400,
    batch_norm=true, weight_decay=0.1, arch=cnn (digits). Command: `sims run image-grokking` (MNIST-1D, 40k steps);
    claims: `sims reproduce humayun2024`.
    """
    return image_task(members, env)


@register("image-cnn", CNNConfig, presets=CNN_PRESETS, cpu_runtime="~30 s (2000 steps)", figures=figures,
          memberwise=MEMBERWISE, transitions=transition_records, memory=image_memory, metrics=METRICS)
def build_cnn(members: Members, env: Env) -> Task:
    """Small conv net on digits, with or without batch norm: LC over its 1024 + 512 convolution units.

    Shows: with alpha = 1 and AdamW (lr 1e-3, wd 0.01) LC at the training points dips in the first tens of steps
    and then rises while the net fits the digits; with batch norm (--set batch_norm=true) LC is higher from the
    first steps on. Command: `sims run image-cnn` (~30 s); the paper preset (alpha 8, 25k steps) shows the descent
    and the ascent but no final descent within its steps.
    """
    return image_task(members, env)
