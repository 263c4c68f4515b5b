"""Random labels (Zhang, Bengio, Hardt, Recht, Vinyals 2017) and class-to-class label flips (distributional
generalisation, Nakkiran and Bansal 2021) on images.

The image MLP of `sims.settings.images.base` (by default on digits, alpha = 1, AdamW lr 1e-3, weight decay 0.01,
batch 200) trained on labels of which a fraction `label_noise` was replaced by a class drawn uniformly at random,
or with a fraction `flip_fraction` of class `flip_from`'s training labels relabelled `flip_to`. Zhang et al.: the
net still fits every training label, and the time to fit grows with the noise fraction. Nakkiran and Bansal:
a net that fits its training set reproduces its label distribution on test points, so about flip_fraction of
flip_from's test points are classified flip_to. The noise fraction, the flip and the optimiser fields are
member-wise: a grid over them trains as one ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Members, with_defaults
from ...engine import Env, Task
from ...registry import register
from .grokking import MEMBERWISE, figures, transition_records as image_records
from .base import IMAGE_METRICS, ImageConfig, image_memory, image_task

MIN_CHANGE = 0.05  # a test accuracy that moves by less than this has no transition (chance level with noise)

PRESETS = {
    "ci": dict(n_train=100, n_test=100, width=32, steps=150, n_evals=10, lc_points=30, lc_dirs=8),
    "default": dict(),
    "paper": dict(dataset="mnist", n_train=10000, n_test=10000, steps=20000, n_evals=80, lc_radius=0.5),
}


@dataclass(frozen=True)
class Config(with_defaults(ImageConfig, dataset="digits", init_scale=1.0, lr=1e-3, weight_decay=0.01, steps=3000,
                           n_evals=60, label_noise=1.0, lc_radius=0.1, lc_points=300)):
    """The image MLP at a standard init on digits with corrupted training labels (every label random by default)."""


def transition_records(run) -> list[dict]:
    """The image records (`image_grokking.transition_records`) with MIN_CHANGE: with every label random the
    test accuracy stays at chance, and the half-way step of its noise is not a transition."""
    return image_records(run, min_change=MIN_CHANGE)


METRICS = IMAGE_METRICS


# its row of `sims atlas`: a control (memorises without generalising)
ATLAS = dict(label="image MLP, all labels random (Zhang et al. 2017): control", order=7, control=True)


@register("random-labels", Config, presets=PRESETS, cpu_runtime="~20 s per member", figures=figures,
          memberwise=MEMBERWISE, transitions=transition_records, memory=image_memory, metrics=METRICS, atlas=ATLAS)
def build(members: Members, env: Env) -> Task:
    """MLP on images with random or flipped training labels: it fits them all (Zhang et al. 2017).

    Shows: training accuracy on the corrupted labels reaches 1 at every noise fraction (the time to fit grows with
    it up to about 0.5 on digits, then falls again); with --set label_noise=0 flip_from=1 flip_fraction=0.3 the net
    fits the flips and sends about 30% of the 1s of the test set to class 7 (distributional generalisation).
    Command: `sims run random-labels` (digits, every label random, 3000 steps); grids: `sims sweep random-labels
    --grid label_noise=0,0.25,0.5,0.75,1 --seeds 2` (one ensemble); claims: `sims reproduce humayun2024`.
    """
    return image_task(members, env)
