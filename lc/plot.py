"""Figures for local complexity: LC curves over training, and an exact 2-D partition.

matplotlib is imported inside the functions (it is not needed to compute LC), and figures are drawn on
an Agg canvas without pyplot, so they work headless and leave pyplot's state alone. Colours come from the
`style` argument (default `STYLE`, colour-blind-safe Okabe-Ito colours); every function returns its Figure.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["plot_lc_curves", "plot_partition", "region_classes", "STYLE"]


# The default style; sims passes its house style (`sims.style.LC`) through the `style` argument of each function.
# colors: line colours; classes: a colour per predicted class of a partition; boundary, edges: line colours.
STYLE = dict(colors=("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#999999"),
             classes=("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442"),
             boundary="#000000", edges=(0.0, 0.0, 0.0, 0.3))


def _style(style: Mapping | None) -> dict:
    out = dict(STYLE)
    if style:
        unknown = set(style) - set(STYLE)
        if unknown:
            raise ValueError(f"style has unknown keys {sorted(unknown)}; valid keys: {sorted(STYLE)}")
        out.update(style)
    return out


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def plot_lc_curves(steps, curves: Mapping[str, np.ndarray], path=None, *, title: str | None = None,
                   style: Mapping | None = None, dpi: int = 120):
    """LC against training step, one line per point set: mean over members with a min-max band.

    steps: [T] (may start at 0); curves: {"train": [T, E], ...} (a [T] array is one member). The x axis is
    logarithmic in step + 1 (so step 0 is shown) and labelled so. Writes the figure to `path` if given (the
    format from its suffix, at `dpi`); returns the Figure. `style`: colours (keys of `STYLE`).
    """
    st = _style(style)
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
        for k, (name, c) in enumerate(arrays.items()):
            color = st["colors"][k % len(st["colors"])]
            ax.plot(steps + 1, np.nanmean(c, axis=1), label=name, lw=1.6, color=color)
            if c.shape[1] > 1:
                ax.fill_between(steps + 1, np.nanmin(c, axis=1), np.nanmax(c, axis=1), color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training step + 1 (optimiser steps)")
    ax.set_ylabel("local complexity (crossed units per neighbourhood)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    if path is not None:
        _save(fig, path, dpi)
    return fig


def region_classes(partition) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per region: the predicted class and the output margin at its centroid, and the class names.

    One output (K = 1): class 1 where f > 0 ("f > 0"), else 0 ("f < 0"), margin |f|. K outputs: the argmax
    ("class j"), margin = largest minus second largest output (the distance in output to the decision boundary).
    Returns (classes [R] int, margins [R] >= 0, names [2 or K]).
    """
    cent = np.stack([p.mean(axis=0) for p in partition.polygons]) if partition.count else np.zeros((0, 2))
    out = partition.output(cent, np.arange(partition.count))  # [R, K]
    if out.shape[1] == 1:
        return (out[:, 0] > 0).astype(int), np.abs(out[:, 0]), ["f < 0", "f > 0"]
    top = np.sort(out, axis=1)
    return out.argmax(axis=1), top[:, -1] - top[:, -2], [f"class {j}" for j in range(out.shape[1])]


def _region_colors(partition, st: dict):
    """Face colours [R, 4] by predicted class (pale near the decision boundary, full colour far from it) and the
    legend handles: one patch per class present with its number of regions."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    classes, margins, names = region_classes(partition)
    if len(names) > len(st["classes"]):  # more classes than colours: shade by margin alone
        base = np.tile(to_rgb(st["classes"][0]), (len(classes), 1))
        handles = [Patch(color=st["classes"][0], label="darker: larger output margin")]
    else:
        base = np.array([to_rgb(st["classes"][c]) for c in classes]).reshape(-1, 3)
        handles = [Patch(color=st["classes"][j], label=f"{names[j]}: {int(np.sum(classes == j))} regions")
                   for j in range(len(names)) if np.any(classes == j)]
    scale = np.quantile(margins, 0.9) if len(margins) else 1.0
    depth = np.clip(margins / (scale if scale > 0 else 1.0), 0, 1)[:, None]  # [R, 1], 0 on the boundary
    faces = 1 - (0.3 + 0.7 * depth) * (1 - base)  # mix with white: pale where the margin is small
    return np.concatenate([faces, np.ones((len(faces), 1))], axis=1), handles


def plot_partition(partition, path=None, *, ax=None, points=None, labels=None, marked=None,
                   marked_label: str = "marked", title: str | None = None, style: Mapping | None = None,
                   dpi: int = 120):
    """Draw an `lc.exact2d.Partition`: each region coloured by the class the network predicts on it (pale near
    the decision boundary, see `region_classes`), thin region edges, the decision boundary thick, optional points
    [n, 2] in plane coordinates (a, b) coloured by `labels` [n] in the colours of the regions (one output: label > 0
    is the class "f > 0"; K outputs: the label is the class index; with more classes than colours the points are
    white and their labels written beside them), ringed where `marked` [n] (bool) is set. The legend's title is
    the number of regions drawn, and it lists the regions per predicted class.

    Draws on `ax` if given, else on a new figure. Saves to `path` if given. Returns the Figure.
    """
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.lines import Line2D

    st = _style(style)
    if ax is None:
        fig = _figure((5.5, 5.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    faces, handles = _region_colors(partition, st)
    ax.add_collection(PolyCollection(partition.polygons, facecolors=faces, edgecolors=st["edges"], linewidths=0.2))
    if len(partition.boundary):
        ax.add_collection(LineCollection(partition.boundary, colors=st["boundary"], linewidths=2.0))
        handles.append(Line2D([], [], color=st["boundary"], lw=2.0, label="decision boundary"))
    if points is not None:
        handles += _points(ax, points, labels, marked, marked_label, st, partition.output_offset.shape[1])
    lo, hi = partition.domain.min(0), partition.domain.max(0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("plane coordinate a (input units)")
    ax.set_ylabel("plane coordinate b (input units)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(handles=handles, title=f"{partition.count} linear regions", fontsize=6, title_fontsize=7,
              loc="lower left", framealpha=0.85)
    if path is not None:
        _save(fig, path, dpi)
    return fig


def _points(ax, points, labels, marked, marked_label: str, st: dict, outputs: int) -> list:
    """Scatter the points (coloured by label as the regions are by class, for a net with `outputs` outputs) and ring
    the marked ones; the legend handles of the rings."""
    from matplotlib.lines import Line2D

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be [n, 2] plane coordinates; got shape {pts.shape}")
    colors = "#FFFFFF"
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if len(lab) != len(pts):
            raise ValueError(f"labels must have one entry per point ({len(pts)}); got {len(lab)}")
        if outputs == 1:
            colors = [st["classes"][int(v)] for v in lab > 0]
        elif outputs <= len(st["classes"]):
            colors = [st["classes"][int(v)] for v in lab]
        else:
            for (a, b), v in zip(pts, lab):
                ax.annotate(str(v), (a, b), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=5)
    ax.scatter(pts[:, 0], pts[:, 1], c=colors, s=14, edgecolors="k", linewidths=0.5, zorder=3)
    if marked is None:
        return []
    mask = np.asarray(marked, dtype=bool).reshape(-1)
    if len(mask) != len(pts):
        raise ValueError(f"marked must have one entry per point ({len(pts)}); got {len(mask)}")
    ax.scatter(pts[mask, 0], pts[mask, 1], s=60, facecolors="none", edgecolors="k", linewidths=0.8, zorder=4)
    return [Line2D([], [], ls="none", marker="o", mfc="none", mec="k", ms=7, label=marked_label)]
