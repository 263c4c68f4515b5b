"""Every metric a ci run of a setting writes is declared (`Simulation.metrics`), every registered simulation
declares its metrics with a meaning and a unit, and `sims show` prints the declarations."""

import re

import pytest

from lc.keys import PATTERN, LCKey
from sims import api, cli, registry

# every ci preset runs in 2-11 s on one thread; the slowest is marked
CI_RUNS = [pytest.param(n, marks=pytest.mark.slow) if n == "modular-addition" else n for n in registry.names()]
# declared metrics that a ci run does not write: they depend on the config (spectrum=isotropic; corrupted labels)
_FLIPS = {"flip_test", "flip_train"}
CONDITIONAL = {"benign-regression": {"closed_form"}, "random-labels": _FLIPS,
               "image-grokking": {"train_acc_clean", *_FLIPS}, "image-cnn": {"train_acc_clean", *_FLIPS}}


def _family(key: str) -> re.Pattern | None:
    """A declared family such as `sv_<k>` as a regex (`<k>`: an integer); None for a plain name or the LC pattern."""
    if key == PATTERN or "<" not in key:
        return None
    return re.compile(r"\d+".join(re.escape(part) for part in re.split(r"<[^>]+>", key)))


def _declaration(sim, name: str) -> str | None:
    """The declared key that covers metric `name` (itself, a family, or the LC pattern); None if none does."""
    if name in sim.metrics:
        return name
    if LCKey.parse(name) is not None and PATTERN in sim.metrics:
        return PATTERN
    return next((k for k in sim.metrics if (f := _family(k)) is not None and f.fullmatch(name)), None)


def test_a_family_covers_its_numbered_metrics_only():
    sim = registry.get("dmf-completion")
    assert _declaration(sim, "sv_12") == "sv_<k>"
    assert _declaration(sim, "sv_x") is None and _declaration(sim, "sv_") is None


@pytest.mark.parametrize("name", CI_RUNS)
def test_every_metric_of_a_ci_run_is_declared(name, tmp_path):
    sim = registry.get(name)
    assert sim.metrics, f"{name} declares no metrics"
    run = api.run(name, preset="ci", out=tmp_path, figures=False, threads=1)
    written = list(run.metric_names)
    assert written
    assert [m for m in written if _declaration(sim, m) is None] == []
    used = {_declaration(sim, m) for m in written}
    unused = [k for k in sim.metrics if k != PATTERN and k not in used and k not in CONDITIONAL.get(name, ())]
    assert unused == [], f"{name} declares metrics its ci run does not write"


@pytest.mark.parametrize("name", registry.names())
def test_every_simulation_declares_its_metrics_with_a_unit(name):
    metrics = registry.get(name).metrics
    assert metrics, f"{name} declares no metrics"
    no_unit = [k for k, meaning in metrics.items() if not re.search(r"\((?:[^()]|\([^()]*\))+\)$", meaning)]
    assert no_unit == [], f"{name}: meanings must end with their unit in parentheses"


def test_show_prints_each_metric_with_its_meaning(capsys):
    assert cli.main(["show", "early-time"]) == 0
    out = capsys.readouterr().out
    for k, meaning in registry.get("early-time").metrics.items():
        assert f"{k}" in out and meaning in out


def test_a_metric_without_a_meaning_is_refused():
    sim = registry.get("early-time")
    with pytest.raises(ValueError, match="metrics"):
        registry.register("declared-badly", sim.config_cls, presets=sim.presets, cpu_runtime="1 s",
                          metrics={"loss": ""})(sim.build)
