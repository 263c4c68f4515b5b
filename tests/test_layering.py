"""The layering of the package: theory imports neither torch nor sims nor lc; lc imports neither sims nor theory;
nothing imports papers/. Checked on the source (every import statement, also inside functions)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"theory": {"torch", "sims", "lc"}, "lc": {"sims", "theory"}, "sims": {"papers"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layering(package):
    bad = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        found = _imports(path) & FORBIDDEN[package]
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(found)
    assert not bad, f"{package}/ must not import {sorted(FORBIDDEN[package])}: {bad}"


def test_the_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from sims.nn import MLP\n    import torch.nn as nn\n")
    assert _imports(f) == {"sims", "torch"}
