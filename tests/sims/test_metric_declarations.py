"""Every metric a ci run of a setting with a declaration writes is declared (`Simulation.metrics`), and
`sims show` prints the declarations."""

import pytest

from lc.keys import PATTERN, LCKey
from sims import api, cli, registry


def _declared(sim, name: str) -> bool:
    return name in sim.metrics or (LCKey.parse(name) is not None and PATTERN in sim.metrics)


@pytest.mark.parametrize("name", ["early-time", "leaky-relu-highdim"])
def test_every_metric_of_a_ci_run_is_declared(name, tmp_path):
    sim = registry.get(name)
    assert sim.metrics, f"{name} declares no metrics"
    run = api.run(name, preset="ci", out=tmp_path, figures=False, threads=1)
    written = list(run.metric_names)
    assert written
    assert [m for m in written if not _declared(sim, m)] == []
    unused = [k for k in sim.metrics if k != PATTERN and k not in written]
    assert unused == [], f"{name} declares metrics its ci run does not write"


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
