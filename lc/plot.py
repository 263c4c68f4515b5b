"""Figures for local complexity: LC curves over training, and an exact 2-D partition.

matplotlib is imported inside the functions (it is not needed to compute LC), and figures are drawn on
an Agg canvas without pyplot, so they work headless and leave pyplot's state alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["plot_lc_curves", "plot_partition"]


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_lc_curves(steps, curves: Mapping[str, np.ndarray], path, *, title: str | None = None) -> Path:
    """LC against training step, one line per point set: mean over members with a min-max band.

    steps: [T] (may start at 0); curves: {"train": [T, E], ...} (a [T] array is one member). The x axis is
    logarithmic in step + 1 (so step 0 is shown) and labelled so. Writes the PNG to `path`, returns it.
    """
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or len(steps) == 0:
        raise ValueError(f"steps must be a non-empty 1-D array [T]; got shape {steps.shape}")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty dict {{set name: [T, E] array}}; got {curves!r}")
    arrays = {}
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        c = c[:, None] if c.ndim == 1 else c
        if c.ndim != 2 or c.shape[0] != len(steps):
            raise ValueError(f"curves[{name!r}] must be [T, E] with T = {len(steps)}; got shape {c.shape}")
        arrays[name] = c
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (diverged members) stay NaN
        for name, c in arrays.items():
            line, = ax.plot(steps + 1, np.nanmean(c, axis=1), label=name, lw=1.6)
            if c.shape[1] > 1:
                ax.fill_between(steps + 1, np.nanmin(c, axis=1), np.nanmax(c, axis=1), color=line.get_color(),
                                alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training step + 1")
    ax.set_ylabel("local complexity (mean crossed units)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_partition(partition, path=None, *, ax=None, points=None, labels=None, title: str | None = None):
    """Draw an `lc.exact2d.Partition`: regions in random distinct colours with thin edges, the decision
    boundary thick black, optional points [n, 2] in plane coordinates (a, b) coloured by `labels` [n].

    Draws on `ax` if given, else on a new figure. Saves to `path` if given. Returns (figure, axes).
    """
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.colors import hsv_to_rgb

    if ax is None:
        fig = _figure((5.5, 5.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    rng = np.random.default_rng(0)
    n = partition.count
    hsv = np.stack([rng.permutation(n) / max(n, 1), rng.uniform(0.25, 0.6, n), rng.uniform(0.8, 1.0, n)], axis=1)
    ax.add_collection(PolyCollection(partition.polygons, facecolors=hsv_to_rgb(hsv), edgecolors=(0, 0, 0, 0.35),
                                     linewidths=0.2))
    if len(partition.boundary):
        ax.add_collection(LineCollection(partition.boundary, colors="k", linewidths=2.0))
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must be [n, 2] plane coordinates; got shape {pts.shape}")
        c = None if labels is None else np.asarray(labels).reshape(-1)
        if c is not None and len(c) != len(pts):
            raise ValueError(f"labels must have one entry per point ({len(pts)}); got {len(c)}")
        ax.scatter(pts[:, 0], pts[:, 1], c=c, cmap="coolwarm" if c is not None else None, s=12,
                   edgecolors="k", linewidths=0.4, zorder=3)
    lo, hi = partition.domain.min(0), partition.domain.max(0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(title if title is not None else f"{n} linear regions")
    if path is not None:
        fig.tight_layout()
        _save(fig, path)
    return fig, ax
