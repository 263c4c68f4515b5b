"""Every axis of every figure the package draws is labelled with its unit: a label ending in "(unit)".

Drawn: the figures of a ci run (one seed, CPU, one thread) of every registered setting, as its `figures`
function returns them. Checked in the source: every label given as a literal to set_xlabel / set_ylabel /
plots.finish in sims/ and lc/ (this covers the claims' paper figures, the atlas and sweep figures, which need
runs too long for a test). Skipped, by rule: an axes switched off (`ax.axison` False: a legend-only panel), a
colorbar's axes, and an axis that is not visible (the shared x axis of a twinx panel).
"""

import ast
import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import sims
from sims import plots, registry

ROOT = Path(__file__).resolve().parents[2]
UNIT = re.compile(r".*\S.*\([^()]*(\([^()]*\)[^()]*)*\)$", re.S)  # some text, then a balanced "(...)" at the end
SETTINGS = [n for n in registry.names() if registry.get(n).figures is not None]


def unit_faults(fig: Figure) -> list[str]:
    """'title: x|y label' for every checked axis of `fig` whose label is empty or ends without a "(unit)"."""
    faults = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison or hasattr(ax, "_colorbar"):
            continue
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            label = axis.get_label().get_text().strip()
            if axis.get_visible() and not UNIT.match(label):
                faults.append(f"{ax.get_title()!r}: {which} label {label!r}")
    return faults


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """ci_run(name): one ci run of the setting (one seed), made once per module."""
    out, made = tmp_path_factory.mktemp("units"), {}

    def get(name):
        if name not in made:
            made[name] = sims.run(name, preset="ci", seeds=1, threads=1, device="cpu", out=out, figures=False)
        return made[name]
    return get


def _saved(monkeypatch) -> list:
    """The Figures `plots.save` writes from now on (for figure functions that return a path)."""
    figs, save = [], plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path, **kw: figs.append(fig) or save(fig, path, **kw))
    return figs


@pytest.mark.parametrize("name", SETTINGS)
def test_every_axis_of_a_settings_figures_states_its_unit(name, ci_run):
    run = ci_run(name)
    figs = [f for f in run.simulation.figures(run) if f is not None]
    assert figs, f"{name}: no figure drawn"
    for fig in figs:
        assert isinstance(fig, Figure)
        assert unit_faults(fig) == [], f"{name}, {plots.saved_path(fig).name}"


def test_atlas_and_sweep_figures_state_their_units(ci_run, monkeypatch, tmp_path):
    from sims import atlas, atlas_report, sweepfiles
    from sims.cli import main

    entries = [e for e in atlas.registered() if e.sim in ("xor-cluster", "dichotomy-sparse")]  # LC; linear model
    assert len(entries) == 2
    rows = [atlas.Row(e, ci_run(e.sim), atlas._records(ci_run(e.sim))) for e in entries]
    assert unit_faults(atlas_report.figure(rows, tmp_path / "atlas.png")) == []
    assert main(["sweep", "benign-max-margin", "--preset", "ci", "--grid", "lr=0.1,0.3", "--seeds", "1", "--device",
                 "cpu", "--out", str(tmp_path / "sweep"), "--threads", "1", "--quiet"]) == 0
    figs = _saved(monkeypatch)
    sweepfiles.figure(tmp_path / "sweep", "lr", "test_error")
    assert len(figs) == 1 and unit_faults(figs[0]) == []
    assert figs[0].axes[0].get_ylabel().endswith("(fraction)")  # the unit declared in the setting's METRICS


def _label_args(call: ast.Call):
    """The label argument of a set_xlabel / set_ylabel / finish call (the second of `finish(ax, ylabel)`)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name in ("set_xlabel", "set_ylabel") and call.args:
        return call.args[0]
    if name == "finish" and len(call.args) >= 2:
        return call.args[1]
    return None


def _literal_tail(node) -> str | None:
    """The text a literal label ends with ("" for an f-string ending in a `metric_unit(...)` call, which returns
    a unit); None for a label that is not a literal (a variable, checked where it is built)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        last = node.values[-1]
        if isinstance(last, ast.Constant):
            return last.value
        call = last.value if isinstance(last, ast.FormattedValue) else None
        if isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", "")) == "metric_unit":
            return "(unit)"
        return "{...}"
    return None


def test_every_literal_axis_label_in_the_source_ends_with_a_unit():
    files = sorted((ROOT / "sims").rglob("*.py")) + sorted((ROOT / "lc").rglob("*.py"))
    faults, seen = [], 0
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            tail = _literal_tail(_label_args(node)) if isinstance(node, ast.Call) else None
            if tail is not None:
                seen += 1
                if not tail.rstrip().endswith(")"):
                    faults.append(f"{path.relative_to(ROOT)}:{node.lineno}: {tail!r}")
    assert seen > 40 and faults == []


@pytest.mark.parametrize("meaning, unit", [("test accuracy (fraction)", "(fraction)"),
                                           ("cosine (unitless, -1 to 1)", "(unitless, -1 to 1)"),
                                           ("a (b) c", "(as recorded)")])
def test_metric_unit_reads_the_declared_unit(meaning, unit):
    assert plots.metric_unit({"m": meaning}, "m") == unit
    assert plots.metric_unit({"sv_<k>": meaning}, "sv_3") == unit
    assert plots.metric_unit({}, "m") == "(as recorded)"


def test_unit_faults_finds_an_unlabelled_axis():
    fig, axes = plots.figure(2)
    axes[0, 0].set_xlabel("step (optimiser steps)"), axes[0, 0].set_ylabel("loss (nats)")
    axes[0, 1].set_xlabel("step"), axes[0, 1].twinx().set_ylabel("accuracy (fraction)")
    assert unit_faults(fig) == ["'': x label 'step'", "'': y label ''"]
