"""lc.plot: figures are written headless, returned, and draw what they are given."""

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from torch import nn

import lc
from lc import exact2d


def test_lc_curves_figure_with_step_zero_and_a_band(tmp_path):
    steps = np.array([0, 1, 10, 100, 1000])
    curves = {"train": np.random.default_rng(0).random((5, 3)), "test": np.arange(5.0)}
    fig = lc.plot.plot_lc_curves(steps, curves, tmp_path / "figs" / "lc.pdf", title="LC",
                                 style=dict(colors=("#000000", "#E69F00")))
    assert isinstance(fig, Figure)
    assert (tmp_path / "figs" / "lc.pdf").read_bytes()[:5] == b"%PDF-"
    ax = fig.axes[0]
    assert [line.get_color() for line in ax.get_lines()] == ["#000000", "#E69F00"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
    assert len(ax.collections) == 1  # the band of the 3-member set only
    with pytest.raises(ValueError, match=r"curves\['train'\]"):
        lc.plot.plot_lc_curves(steps, {"train": np.ones((4, 2))})
    with pytest.raises(ValueError, match="steps"):
        lc.plot.plot_lc_curves([], curves)
    with pytest.raises(ValueError, match="unknown keys"):
        lc.plot.plot_lc_curves(steps, curves, style=dict(colours=("k",)))


def _partition(seed: int = 0, outputs: int = 1):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, outputs)).double()
    with torch.no_grad():
        model[2].bias -= model(torch.zeros(1, 2, dtype=torch.float64))[0]
    return model, exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))


def test_partition_figure_draws_every_region_the_boundary_and_the_points(tmp_path):
    _, part = _partition()
    pts = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    fig = lc.plot.plot_partition(part, tmp_path / "p.png", points=pts, labels=pts[:, 0] > 0, marked=pts[:, 1] > 0,
                                 marked_label="upper half", title="t")
    ax = fig.axes[0]
    assert (tmp_path / "p.png").stat().st_size > 1000
    polys, lines = ax.collections[0], ax.collections[1]
    assert len(polys.get_paths()) == part.count and len(lines.get_segments()) == len(part.boundary) > 0
    assert len(ax.collections) == 4 and ax.get_title() == "t"  # regions, boundary, points, rings
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_legend().get_title().get_text() == f"{part.count} linear regions"
    assert legend[-2:] == ["decision boundary", "upper half"]
    with pytest.raises(ValueError, match="labels"):
        lc.plot.plot_partition(part, points=pts, labels=[0, 1])
    with pytest.raises(ValueError, match="marked"):
        lc.plot.plot_partition(part, points=pts, marked=[True])


@pytest.mark.parametrize("outputs", [1, 3])
def test_regions_are_coloured_by_the_class_the_net_predicts_on_them(outputs):
    model, part = _partition(1, outputs)
    classes, margins, names = lc.plot.region_classes(part)
    cent = np.stack([p.mean(axis=0) for p in part.polygons])
    with torch.no_grad():
        out = model(torch.as_tensor(cent)).numpy()  # [R, K]
    want = (out[:, 0] > 0).astype(int) if outputs == 1 else out.argmax(axis=1)
    assert np.array_equal(classes, want) and len(names) == max(2, outputs) and np.all(margins >= 0)
    style = dict(classes=("#56B4E9", "#E69F00", "#009E73"))
    fig = lc.plot.plot_partition(part, style=style)
    faces = fig.axes[0].collections[0].get_facecolors()[:, :3]  # [R, 3]
    for j, colour in enumerate(style["classes"][:len(names)]):
        base = np.array(to_rgb(colour))
        if np.any(classes == j):  # a mix of the class colour with white: the same hue direction
            mix = (1 - faces[classes == j]) / np.maximum(1 - base, 1e-9)
            assert np.allclose(mix, mix[:, :1], atol=1e-6)
    counts = [int(t.get_text().split(": ")[1].split()[0]) for t in fig.axes[0].get_legend().get_texts()
              if "regions" in t.get_text()]
    assert sum(counts) == part.count
