"""Partition movies: the exact 2-D linear regions (`lc.exact2d`) of a run's slice at each of its snapshots, as an
animated GIF (Pillow, through matplotlib's `PillowWriter`), with the step and the train / test accuracy in each frame.

A setting makes movies by defining `movie_slices(run)` beside its `figures` function: an iterator of (step,
Partition, points [n, 2] or None, labels [n] or None) over the run's snapshots, read through `Run.snapshot`
(weights_only). xor-cluster, modular-addition and image-grokking do.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from . import plots, style

__all__ = ["partition_movie", "movie_maker"]


def movie_maker(run):
    """The setting's `movie_slices` function, or a ValueError saying why the run has no movie."""
    figures = run.simulation.figures
    maker = getattr(importlib.import_module(figures.__module__), "movie_slices", None) if figures else None
    if maker is None:
        raise ValueError(f"{run.sim_name} has no partition movie; settings with snapshots and a movie: xor-cluster, "
                         "modular-addition, image-grokking")
    if len(run.snapshots()) < 2:
        raise ValueError(f"{run.dir} holds {len(run.snapshots())} snapshot(s); a movie needs at least 2 (run with "
                         "--set snapshots=N, N >= 2)")
    return maker


def _accuracy(run, step: int, name: str) -> float:
    """Member 0's `name` at `step`, NaN where the run has no such metric or eval."""
    steps = list(run.steps)
    if name not in run.metric_names or step not in steps:
        return float("nan")
    return float(run.metric(name)[steps.index(step), 0])


def partition_movie(run, path=None, *, fps: float = 2.0, dpi: int | None = None) -> Path:
    """Write the GIF of member 0's exact partition on the setting's slice at every snapshot to `path` (default
    figures/partition-movie.gif) at `dpi` (default: the style's); returns the path. One frame per snapshot."""
    from lc.plot import plot_partition
    from matplotlib.animation import PillowWriter

    maker = movie_maker(run)
    path = Path(path) if path is not None else run.dir / "figures" / "partition-movie.gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plots.figure(1, panel=(5.6, 5.6), layout=None)  # every frame the same size and placement
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.1, top=0.88)
    ax = axes[0, 0]
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi or style.current()["dpi"]):
        for step, part, points, labels in maker(run):
            ax.clear()
            tr, te = _accuracy(run, step, "train_acc"), _accuracy(run, step, "test_acc")
            plot_partition(part, ax=ax, points=points, labels=labels, style=style.LC,
                           title=f"{run.sim_name}, member 0\nstep {step}: train accuracy {tr:.2f}, test accuracy "
                                 f"{te:.2f}")
            writer.grab_frame()
    return path
