"""Image classifiers whose input-space partition we watch: grokking and local complexity (Humayun, Balestriero,
Baraniuk 2024, "Deep networks always grok and here is why"), the large-init MLP of Omnigrok (Liu, Michaud,
Tegmark 2022), and random labels (Zhang, Bengio, Hardt, Recht, Vinyals 2017).

Data (`sims.data.image_split`, offline): scikit-learn's 8 x 8 digits, MNIST-1D generated procedurally, or real
MNIST from local files (`data_dir`). Each member draws its own training and test subset from its own 'data'
generator. Model: an MLP of `depth` Linear layers of `width` units with ReLU (optionally batch norm after each
hidden Linear), or a small conv net (`arch=cnn`, `sims.nn.SmallCNN`), every parameter multiplied by alpha =
`init_scale` at init; trained with AdamW on mini-batches, by default on the mean squared error to one-hot targets
(the Omnigrok / Humayun et al. setup). Metrics: train and test accuracy and loss, the parameter norm, and LC at
train, test and random points (uniform in the training box) at `lc_radius` and the radii of `lc_radii`.

This module holds what the image settings share: the config, data, models, the Task, the memory estimate and
the LC phase helpers. `image-grokking` (`sims.settings.images.grokking`) keeps snapshots and, when a run completes,
measures on the plane through three training points of each member (`sims.settings.images.slices`) the migration
of the region boundaries towards the decision boundary and LC against exact region counts; `random-labels`
(`sims.settings.images.random_labels`) trains on corrupted training labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lc.keys import MEANING, PATTERN, lc_name as lc_key_name

from ... import plots, transitions
from ...config import ConfigError, Members, ProbedConfig, param, with_defaults
from ...data import IMAGE_SETS, check_image_source, flip_class, for_members, image_split, random_labels
from ...engine import SNAPSHOTS_HELP, Env, Task, snapshot_steps
from ...nn import MLP, SmallCNN, make_generators
from ..common import argmax_accuracy, cross_entropy, make_probe, squared_loss

N_CLASSES = 10
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "mnist1d": (40,)}  # one input, as an image (C, H, W) if 2-D
POOL = {"digits": 1797}  # images in a fixed pool shared by train and test (digits: 1797)
CNN_CHANNELS = (16, 32)
MIN_TURN = 0.05  # smallest relative move of LC that makes a turning point (the descent after init is 5-15%)

# what `image_task` writes (loss: mse = mean squared error to one-hot targets, ce = cross-entropy)
IMAGE_METRICS = {
    "train_acc": "fraction of training images whose largest output is their (possibly corrupted) label (fraction)",
    "test_acc": "fraction of test images whose largest output is their label (fraction)",
    "train_loss": "training loss: mean squared error over the 10 outputs to one-hot targets (loss=mse, squared "
                  "output units) or mean cross-entropy (loss=ce, nats)",
    "test_loss": "the same loss on the test images (squared output units or nats)",
    "weight_norm": "||theta||_2 over every parameter (parameter units)",
    "train_acc_clean": "label_noise > 0 or a flip only: training accuracy against the clean labels (fraction)",
    "flip_test": "flip only: share of flip_from's test images predicted flip_to; NaN for a member without a flip "
                 "(fraction)",
    "flip_train": "flip only: share of the flipped training images predicted flip_to; NaN for a member without a "
                  "flip (fraction)",
    PATTERN: MEANING,
}


@dataclass(frozen=True)
class ImageConfig(with_defaults(ProbedConfig, optimizer="adamw", lr=3e-3, weight_decay=0.03, batch_size=200,
                                steps=40000, n_evals=30, lc_radius=0.05, lc_dirs=25, lc_points=500)):
    """An image classifier trained with AdamW on mini-batches; LC at train, test and random points."""

    dataset: str = param("mnist1d", "image set: digits (scikit-learn 8x8, bundled), mnist1d (generated), mnist "
                                    "(local IDX or .npz files in data_dir)", choices=IMAGE_SETS)
    data_dir: str = param("", "folder with the MNIST IDX files (raw or .gz) or mnist.npz, or the .npz itself "
                              "(dataset=mnist only; nothing is downloaded)")
    n_train: int = param(1000, "training images per member", low=1)
    n_test: int = param(2000, "test images per member (digits: at most the 1797 - n_train images left)", low=1)
    arch: str = param("mlp", "mlp, or cnn (sims.nn.SmallCNN, 16 and 32 channels; 2-D images: digits, mnist)",
                      choices=("mlp", "cnn"))
    width: int = param(200, "hidden units per layer (mlp)", low=1)
    depth: int = param(3, "number of Linear layers (mlp): depth - 1 hidden layers", low=2)
    batch_norm: bool = param(False, "batch norm after every hidden Linear (mlp) or convolution (cnn)")
    init_scale: float = param(8.0, "alpha: every parameter is multiplied by alpha at init (Omnigrok)", low=0.0,
                              low_open=True)
    loss: str = param("mse", "mse: mean squared error to one-hot targets (Omnigrok, Humayun et al.); ce: "
                             "cross-entropy", choices=("mse", "ce"))
    lc_radii: str = param("", "further LC radii besides lc_radius, comma-separated (input units); with any, "
                              "every LC metric carries the suffix @r<radius>")
    label_noise: float = param(0.0, "fraction of training labels replaced by a class drawn uniformly at random "
                                    "(Zhang et al. 2017)", low=0.0, high=1.0)
    flip_from: int = param(-1, "class whose training labels are partly flipped to flip_to (-1: no flip)", low=-1,
                           high=N_CLASSES - 1)
    flip_to: int = param(7, "class the flipped labels of flip_from become", low=0, high=N_CLASSES - 1)
    flip_fraction: float = param(0.3, "fraction of flip_from's training points relabelled flip_to", low=0.0,
                                 high=1.0)
    snapshots: int = param(0, SNAPSHOTS_HELP + " (the partition slices of image-grokking use -1)", low=-1)

    def check_inputs(self) -> None:
        """The MNIST files in data_dir: readable, of the right shape and dtype, with enough images (`sims.checks`)."""
        check_image_source(self.dataset, self.data_dir, self.n_train, n_test(self))

    @property
    def lc_input_dim(self) -> int:
        """Pixels of one input: the LC probe takes at most this many directions."""
        return math.prod(SHAPES[self.dataset])

    def check(self) -> None:
        if self.data_dir and self.dataset != "mnist":
            raise ConfigError(f"data_dir is read only with dataset='mnist'; got dataset={self.dataset!r} with "
                              f"data_dir={self.data_dir!r} (drop data_dir or set dataset=mnist)")
        if self.flip_from >= 0 and self.flip_from == self.flip_to:
            raise ConfigError(f"flip_to={self.flip_to} must differ from flip_from={self.flip_from}")
        if self.arch == "cnn" and len(SHAPES[self.dataset]) != 3:
            raise ConfigError(f"arch='cnn' needs 2-D images (dataset digits or mnist); got dataset={self.dataset!r}")
        if self.dataset in POOL and self.n_train >= POOL[self.dataset]:
            raise ConfigError(f"n_train={self.n_train} leaves no test images: {self.dataset} has "
                              f"{POOL[self.dataset]} images")
        extra = lc_radii(self)
        if self.lc_radius in extra[1:]:
            raise ConfigError(f"lc_radii={self.lc_radii!r} repeats lc_radius={self.lc_radius:g}")


def lc_radii(cfg) -> list[float]:
    """[lc_radius, *radii of lc_radii] (ConfigError for a malformed list)."""
    try:
        extra = [float(r) for r in cfg.lc_radii.split(",") if r.strip()]
    except ValueError:
        raise ConfigError(f"lc_radii must be comma-separated numbers; got {cfg.lc_radii!r}") from None
    bad = [r for r in extra if not (math.isfinite(r) and r > 0)]
    if bad or len(set(extra)) != len(extra):
        raise ConfigError(f"lc_radii must be distinct positive finite numbers; got {cfg.lc_radii!r}")
    return [cfg.lc_radius, *extra]


def lc_name(cfg, points: str = "train", radius: float | None = None) -> str:
    """The metric name of LC at `points` (train | test | random) at `radius` (default lc_radius)."""
    r = cfg.lc_radius if radius is None else radius
    return lc_key_name(points, r if len(lc_radii(cfg)) > 1 else None)  # one radius: no suffix


def n_test(cfg) -> int:
    """Test images per member: n_test, capped by the images a fixed pool has left (digits)."""
    return min(cfg.n_test, POOL[cfg.dataset] - cfg.n_train) if cfg.dataset in POOL else cfg.n_test


def member_images(c, g: torch.Generator):
    """One member's data: x [n, d], y [n] (the labels it trains on: label_noise of them random, then flip_fraction
    of class flip_from relabelled flip_to), y_clean [n], x_test, y_test (float64 / int64)."""
    x, y_clean, xt, yt = image_split(c.dataset, c.n_train, n_test(c), generator=g, data_dir=c.data_dir)
    y = random_labels(y_clean, c.label_noise, N_CLASSES, generator=g) if c.label_noise > 0 else y_clean
    if c.flip_from >= 0:
        y = flip_class(y, c.flip_from, c.flip_to, c.flip_fraction, generator=g)
    return x, y, y_clean, xt, yt


def make_model(members: Members, dtype: torch.dtype) -> torch.nn.Module:
    """The ensemble MLP (or SmallCNN) of the members, alpha = each member's init_scale."""
    c, gens, alpha = members[0], make_generators(members.seeds, "init"), members.values("init_scale")
    if c.arch == "cnn":
        return SmallCNN(SHAPES[c.dataset], N_CLASSES, gens, channels=CNN_CHANNELS, batch_norm=c.batch_norm,
                        init_scale=alpha, dtype=dtype)
    return MLP(math.prod(SHAPES[c.dataset]), c.width, N_CLASSES, c.depth, gens, init_scale=alpha,
               batch_norm=c.batch_norm, dtype=dtype)


def _loss(cfg) -> Callable:
    """(out [E, B, 10], target) -> [E]: squared error to one-hot targets [E, B, 10], or cross-entropy on labels."""
    return squared_loss if cfg.loss == "mse" else cross_entropy


def _target(cfg, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """What the loss compares the output with: one-hot [E, n, 10] (mse) or the labels [E, n] (ce)."""
    return torch.nn.functional.one_hot(y, N_CLASSES).to(dtype) if cfg.loss == "mse" else y


def weight_norm(model: torch.nn.Module) -> torch.Tensor:
    """||theta||_2 over every parameter, per member: [E]."""
    E = model.n_members
    return sum(p.detach().pow(2).reshape(E, -1).sum(dim=1) for p in model.parameters()).sqrt()


def _flip_metrics(members: Members, out, out_t, y, y_clean, yt) -> dict[str, torch.Tensor]:
    """flip_test: share of the test points of class flip_from predicted flip_to; flip_train: share of the flipped
    training points predicted flip_to (1 when the flips are fitted). NaN for members without a flip. [E] each."""
    rows = []
    for e, c in enumerate(members):
        if c.flip_from < 0:
            rows.append((math.nan, math.nan))
            continue
        src, flipped = yt[e] == c.flip_from, (y_clean[e] == c.flip_from) & (y[e] == c.flip_to)
        share = lambda o, sel: float((o.argmax(-1)[sel] == c.flip_to).double().mean()) if bool(sel.any()) else math.nan
        rows.append((share(out_t[e], src), share(out[e], flipped)))
    t = torch.tensor(rows, dtype=torch.float64)
    return dict(flip_test=t[:, 0], flip_train=t[:, 1])


def image_task(members: Members, env: Env) -> Task:
    """The Task of an image setting: each member's data (`member_images`), the ensemble model, the loss, and an
    evaluation of accuracies, losses, the parameter norm (and accuracy on clean labels and flip shares when some
    member's labels are corrupted); the LC probe at every radius of `lc_radii`; snapshots (`snapshot_steps`)."""
    cfg, dev, dtype = members[0], env.device, env.dtype
    x, y, y_clean, xt, yt = for_members(member_images, members, make_generators(members.seeds, "data"), dtype=dtype,
                                        device=dev)
    model = make_model(members, dtype).to(dev)
    loss = _loss(cfg)
    target, target_t = _target(cfg, y, dtype), _target(cfg, yt, dtype)
    corrupted = any(c.label_noise > 0 or c.flip_from >= 0 for c in members)
    flips = any(c.flip_from >= 0 for c in members)

    def evaluate(m) -> dict[str, torch.Tensor]:
        out, out_t = m(x), m(xt)
        metrics = dict(train_acc=argmax_accuracy(out, y), test_acc=argmax_accuracy(out_t, yt),
                       train_loss=loss(out, target), test_loss=loss(out_t, target_t), weight_norm=weight_norm(m))
        if corrupted:
            metrics["train_acc_clean"] = argmax_accuracy(out, y_clean)
        if flips:
            metrics.update(_flip_metrics(members, out, out_t, y, y_clean, yt))
        return metrics

    return Task(model=model, x=x, y=target, loss=loss, evaluate=evaluate,
                probe=make_probe(cfg, members.seeds, train=x, test=xt, radius=lc_radii(cfg)),
                snapshot_steps=snapshot_steps(cfg.steps, cfg.n_evals, cfg.snapshots))


def image_memory(members: Members, itemsize: int) -> dict:
    """Rough bytes: data (train and test, float64 copies while drawn), parameters with their copies
    (`sims.memory.PARAM_COPIES`), activations of a full evaluation, and one LC chunk."""
    from ...memory import PARAM_COPIES

    c, E = members[0], len(members)
    d, points = math.prod(SHAPES[c.dataset]), c.n_train + n_test(c)
    if c.arch == "cnn":
        h, w = SHAPES[c.dataset][1:]
        units = h * w * CNN_CHANNELS[0] + h * w * CNN_CHANNELS[1] // 4
        params = 9 * (CNN_CHANNELS[0] * SHAPES[c.dataset][0] + CNN_CHANNELS[0] * CNN_CHANNELS[1]) + units
    else:
        units = c.width * (c.depth - 1)
        params = d * c.width + c.width * c.width * (c.depth - 2) + c.width * N_CLASSES
    return dict(data=E * points * (d + N_CLASSES) * (itemsize + 8), parameters=E * PARAM_COPIES * params * itemsize,
                activations=4 * E * points * (units + N_CLASSES) * itemsize, lc=E * 2**20 * 8)


# ---------------------------------------------------------------------------------------------------- analysis

def lc_phases(run, points: str = "train", min_fall: float = 0.2) -> list[dict | None]:
    """Per member: the three LC phases of `sims.transitions.descent_ascent_descent` (a minimum, a maximum, a fall
    of at least min_fall) on LC at `points` (lc_radius), or None where the curve lacks them."""
    lc = run.metric(lc_name(run.config, points))
    return [transitions.descent_ascent_descent(run.steps, lc[:, e], min_fall=min_fall, min_rel_change=MIN_TURN)
            for e in range(lc.shape[1])]



def lc_peak(run, points: str = "train") -> list[tuple[int, float]]:
    """Per member: (step, value) of the largest LC at `points` (lc_radius) on the curve smoothed as the shared phase
    detection smooths it (`sims.transitions.smooth`, running median of 3 evaluations): the top of the ascent."""
    lc = run.metric(lc_name(run.config, points))
    out = []
    for e in range(lc.shape[1]):
        v = transitions.smooth(lc[:, e])
        i = int(np.nanargmax(v))
        out.append((int(run.steps[i]), float(v[i])))
    return out


def curves_figure(run, path, *, accuracies=(("train_acc", "train"), ("test_acc", "test"))):
    """Accuracies and LC at train / test / random points (lc_radius) on one step axis, and the parameter norm."""
    c = run.config
    fig, axes = plots.figure(3)
    for metric, label in accuracies:
        plots.run_band(axes[0, 0], run, metric, label)
    plots.finish(axes[0, 0], "accuracy (fraction)", steps=run.steps)
    for s in plots.LC_SETS:
        if lc_name(c, s) in run.metric_names:
            plots.run_band(axes[0, 1], run, lc_name(c, s), s)
    plots.finish(axes[0, 1], f"LC at r = {c.lc_radius:g}, P = {c.lc_dirs} (crossed units per neighbourhood)",
                 steps=run.steps)
    plots.run_band(axes[0, 2], run, "weight_norm", "||theta||")
    plots.finish(axes[0, 2], "parameter norm (parameter units)", steps=run.steps)
    model = f"{c.arch} depth {c.depth} width {c.width}" if c.arch == "mlp" else "small CNN"
    return plots.save(fig, path, title=f"{run.sim_name}: {c.dataset}, {c.n_train} images, {model}"
                      f"{', batch norm' if c.batch_norm else ''}, alpha {c.init_scale:g}, lr {c.lr:g}, "
                      f"wd {c.weight_decay:g}, batch {c.batch_size}")
