"""The light index: shipped and fresh agree, list/show/--help import neither torch nor a setting, `registry.get`
imports one setting, and a broken setting module fails only the commands that need it, with one line."""

import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

import lc
import sims
import theory
from sims import index
from sims.catalog import ModuleLoadError
from sims.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported yet) from the repository root; its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_shipped_index_equals_a_fresh_build():
    fresh = index.render(index.build())
    assert index.PATH.read_text() == fresh, "sims/index.json is stale: run `python -m sims.index --write`"


def test_index_entry_describes_the_registered_simulation():
    from sims import registry

    sim, entry = registry.get("xor-cluster"), index.load()["xor-cluster"]
    assert entry["module"] == sim.build.__module__ and entry["kind"] == sim.kind == "trained"
    assert [f["name"] for f in entry["fields"]] == list(sim.config_cls.__dataclass_fields__)
    assert entry["presets"]["ci"] == dict(sim.presets["ci"])
    assert set(index.load()) == set(registry.names())


def test_list_show_help_import_neither_torch_nor_a_setting():
    out = _python("""
        import sys
        from sims.cli import main
        assert main(["list"]) == 0 and main(["show", "xor-cluster"]) == 0
        try:
            main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0
        import sims
        sims.__version__
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch" or m.startswith("sims.settings")))
    """)
    assert "xor-cluster" in out and "presets:" in out and "usage: sims" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_get_imports_only_the_module_that_registers_the_name():
    out = _python("""
        import sys
        from sims import index, registry
        registry.get("dmf-completion")
        print(sorted({e["module"] for e in index.load().values()} & set(sys.modules)))
    """)
    assert out.strip() == str([index.module_of("dmf-completion")])


@pytest.fixture
def broken_setting(tmp_path, monkeypatch):
    """A fake index entry 'broken-sim' whose module raises on import (and a metric to show)."""
    (tmp_path / "broken_setting.py").write_text("raise RuntimeError('this setting is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = dict(index.load())
    entries["broken-sim"] = {**entries["xor-cluster"], "name": "broken-sim", "module": "broken_setting",
                             "metrics": {"test_acc": "accuracy on the test set"}}
    monkeypatch.setattr(index, "load", lambda: entries)
    return "broken-sim"


def test_a_broken_setting_fails_only_the_commands_that_need_it(broken_setting, capsys, tmp_path):
    out = tmp_path / "runs"
    assert main(["run", broken_setting, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert "broken_setting failed to import" in err and "RuntimeError: this setting is broken" in err
    assert not out.exists()
    assert main(["list"]) == 0 and broken_setting in capsys.readouterr().out
    assert main(["show", broken_setting]) == 0
    shown = capsys.readouterr().out
    assert "metrics:" in shown and "accuracy on the test set" in shown
    assert main(["run", "xor-cluster", "--set", "lrr=1", "--out", str(out)]) == 2  # xor-cluster still loads
    assert "Did you mean 'lr'" in capsys.readouterr().err


def test_show_unknown_name_suggests_close_matches(capsys):
    assert main(["show", "xor-clustr"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'xor-cluster'" in err and len(err.strip().splitlines()) == 1


def test_catalog_imports_the_located_module_only_and_names_a_broken_one(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_catalog_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from sims.catalog import Catalog\n"
                                     "CATALOG = Catalog('thing', __name__, locate={'a': __name__ + '.good'}.get)\n")
    (pkg / "good.py").write_text("from fake_catalog_pkg import CATALOG\nCATALOG.add('a', 1)\n")
    (pkg / "bad.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from fake_catalog_pkg import CATALOG

    assert CATALOG.get("a") == 1 and "fake_catalog_pkg.bad" not in sys.modules
    with pytest.raises(ModuleLoadError, match=r"fake_catalog_pkg\.bad failed to import \(ModuleNotFoundError"):
        CATALOG.names()
    with pytest.raises(ModuleLoadError):
        CATALOG.get("b")  # an unknown name loads every module, and one is broken


def test_version_everywhere(capsys):
    expected = version("implicit-bias-lab")
    assert sims.__version__ == lc.__version__ == theory.__version__ == expected
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.strip() == f"sims {expected}"


def test_packages_ship_py_typed_and_the_index():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ("sims", "lc", "theory"):
        assert (ROOT / package / "py.typed").is_file()
    assert 'sims = ["py.typed", "index.json", "costs.json"]' in pyproject  # costs.json: sims show --preset
    assert 'lc = ["py.typed"]' in pyproject and 'theory = ["py.typed"]' in pyproject
