"""Figures for papers: figure functions return Figures in the house style, `sims plot --format/--dpi/--movie`."""

import itertools

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

import sims
from sims import plots, style
from sims.cli import main
from sims.claims import arora2019_figures as arora_figures
from sims.settings.clusters import xor_cluster


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    """A ci xor-cluster run (one member, snapshots at several steps) with its figures."""
    return sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", out=tmp_path_factory.mktemp("runs"), threads=1)


def _look(line: Line2D) -> tuple:
    return str(line.get_color()), str(line.get_linestyle()), str(line.get_marker())


def _legend_faults(fig) -> list[str]:
    """Axes whose legend lists some lines but not others: a line is listed when its label is in the legend, or
    it looks exactly like a listed line (the other members of an ensemble)."""
    faults = []
    for ax in fig.axes:
        legend, lines = ax.get_legend(), ax.get_lines()
        if legend is None or not lines:
            continue
        texts = {t.get_text() for t in legend.get_texts()}
        listed = {_look(line) for line in lines if line.get_label() in texts}
        faults += [f"{ax.get_title()!r}: {line.get_label()!r}" for line in lines
                   if line.get_label() not in texts and _look(line) not in listed]
    return faults


def _reference_clashes(fig) -> list[tuple]:
    """Pairs of reference lines on one panel drawn alike (same colour and dash pattern)."""
    out = []
    for ax in fig.axes:
        refs = [line for line in ax.get_lines() if line.get_gid() == "reference"]
        out += [(a.get_label(), b.get_label()) for a, b in itertools.combinations(refs, 2)
                if (a.get_color(), a.get_linestyle()) == (b.get_color(), b.get_linestyle())]
        assert all(line.get_label() and not line.get_label().startswith("_") for line in refs)
    return out


def test_figure_functions_return_saved_figures_with_full_legends_and_distinct_references(xor_run):
    figs = xor_cluster.figures(xor_run)
    assert len(figs) == 3 and all(isinstance(f, Figure) for f in figs)
    for f in figs:
        assert plots.saved_path(f).is_file() and plots.saved_path(f).suffix == ".png"
        assert _legend_faults(f) == [] and _reference_clashes(f) == []
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in f.axes)
    accuracy = figs[0].axes[0]
    assert sum(line.get_gid() == "reference" for line in accuracy.get_lines()) == 2  # Bayes rate and chance


class _SingularValues:
    """What dmf's singular-value panel reads from a run: 8 singular values over 5 steps."""
    steps = np.arange(5)
    metric_names = [f"sv_{i}" for i in range(1, 9)]
    config = type("C", (), dict(depth=3, n=10, rank=2, n_obs=40, init_scale=1e-3, lr=0.1))()

    def metric(self, name):
        return np.full((5, 1), 1.0 / int(name[3:]))


def test_singular_value_legend_lists_every_line(tmp_path):
    fig = arora_figures.singular_values_figure([_SingularValues()], tmp_path / "sv.png")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 8 and len(ax.get_legend().get_texts()) == 8 and _legend_faults(fig) == []


def test_partition_panels_label_their_own_region_count(xor_run):
    fig = xor_cluster.partition_figure(xor_run, xor_run.dir / "figures" / "check.png")
    steps = list(xor_cluster.transition_steps(xor_run).values())
    assert len(fig.axes) == len(steps) >= 2
    for ax, step in zip(fig.axes, steps):
        part = xor_cluster._slice(xor_run, step, 0)
        legend = ax.get_legend()
        assert legend.get_title().get_text() == f"{part.count} linear regions"
        per_class = [int(t.get_text().split(": ")[1].split()[0]) for t in legend.get_texts() if "regions" in t.get_text()]
        assert sum(per_class) == part.count


def test_plot_format_pdf_and_dpi(xor_run, capsys):
    assert main(["plot", str(xor_run.dir), "--format", "pdf"]) == 0
    printed = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("figure: ")]
    assert len(printed) == 3
    for p in printed:
        assert p.endswith(".pdf")
        with open(p, "rb") as f:
            assert f.read(5) == b"%PDF-"
    widths = {}
    for dpi in (50, 100):
        assert main(["plot", str(xor_run.dir), "--dpi", str(dpi)]) == 0
        with Image.open(xor_run.dir / "figures" / "accuracy.png") as im:
            widths[dpi] = im.size[0]
    assert 1.9 < widths[100] / widths[50] < 2.1


@pytest.mark.parametrize("argv, says", [(["--format", "jpg"], "png, pdf, svg"), (["--dpi", "0"], "dpi"),
                                        (["--dpi", "high"], "dpi"), (["--format", "PDF"], "format")])
def test_plot_bad_format_or_dpi_is_one_line_exit_2(xor_run, capsys, argv, says):
    before = sorted(p.name for p in (xor_run.dir / "figures").iterdir())
    assert main(["plot", str(xor_run.dir)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    assert sorted(p.name for p in (xor_run.dir / "figures").iterdir()) == before


def test_output_settings_are_restored_and_checked():
    with style.output("svg", 300):
        assert style.current() == {"format": "svg", "dpi": 300}
    assert style.current() == {"format": "png", "dpi": 120}
    with pytest.raises(ValueError, match="png, pdf, svg"):
        style.check_format("eps")


def test_movie_has_a_frame_per_snapshot(xor_run, capsys):
    assert len(xor_run.snapshots()) >= 2
    assert main(["plot", str(xor_run.dir), "--movie"]) == 0
    path = capsys.readouterr().out.strip().split("movie: ")[1]
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(xor_run.snapshots()) > 1


def test_movie_refused_without_snapshots(tmp_path, capsys):
    r = sims.run("xor-cluster", preset="ci", seeds=1, device="cpu", out=tmp_path, threads=1, figures=False,
                 steps=2, n_evals=2, snapshots=0)
    assert main(["plot", str(r.dir), "--movie"]) == 2
    assert "snapshot" in capsys.readouterr().err
