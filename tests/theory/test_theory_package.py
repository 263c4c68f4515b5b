"""The theory package as a whole: doctests, allowed imports, a cheap `import theory`."""

import ast
import doctest
import importlib
import pathlib
import subprocess
import sys

import pytest

import theory

PACKAGE = pathlib.Path(theory.__file__).parent
ALLOWED = {"numpy", "scipy", "cvxpy", "theory"} | set(sys.stdlib_module_names)


@pytest.mark.parametrize("name", theory.__all__)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(f"theory.{name}"), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_theory_imports_only_numpy_scipy_cvxpy_and_the_standard_library(path):
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots <= ALLOWED, f"{path.name} imports {sorted(roots - ALLOWED)}"


def test_import_theory_is_lazy_and_light():
    code = (
        "import sys, theory; assert not {'cvxpy', 'scipy', 'torch', 'sims', 'lc'} & set(sys.modules); "
        "theory.linear_regression; assert 'cvxpy' not in sys.modules and 'torch' not in sys.modules; "
        "print(set(theory.__all__) <= set(dir(theory)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
