"""lc.plot: figures are written headless and draw what they are given."""

import numpy as np
import pytest
import torch
from torch import nn

import lc
from lc import exact2d


def test_lc_curves_png_with_step_zero_and_a_band(tmp_path):
    steps = np.array([0, 1, 10, 100, 1000])
    curves = {"train": np.random.default_rng(0).random((5, 3)), "test": np.arange(5.0)}
    path = lc.plot.plot_lc_curves(steps, curves, tmp_path / "figs" / "lc.png", title="LC")
    assert path == tmp_path / "figs" / "lc.png" and path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"curves\['train'\]"):
        lc.plot.plot_lc_curves(steps, {"train": np.ones((4, 2))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="steps"):
        lc.plot.plot_lc_curves([], curves, tmp_path / "x.png")


def test_partition_figure_draws_every_region_the_boundary_and_the_points(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    with torch.no_grad():
        model[2].bias -= model(torch.zeros(1, 2, dtype=torch.float64))[0]
    part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))
    pts = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    fig, ax = lc.plot.plot_partition(part, tmp_path / "p.png", points=pts, labels=pts[:, 0] > 0, title="t")
    assert (tmp_path / "p.png").stat().st_size > 1000
    polys, lines = ax.collections[0], ax.collections[1]
    assert len(polys.get_paths()) == part.count and len(lines.get_segments()) == len(part.boundary) > 0
    assert len(ax.collections) == 3 and ax.get_title() == "t"
    with pytest.raises(ValueError, match="labels"):
        lc.plot.plot_partition(part, points=pts, labels=[0, 1])
