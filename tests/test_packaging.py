"""The files a public package carries, and README's install section against pyproject.toml."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_extra_named_in_readme_exists():
    extras = _pyproject()["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text()
    named = set()
    for spec in re.findall(r"implicit-bias-lab\[([^\]]+)\]|\.\[([^\]]+)\]", readme):
        named |= {e.strip() for part in spec for e in part.split(",") if e.strip()}
    named |= set(re.findall(r"^\| `([a-z]+)` \|", readme, flags=re.M)) & (set(extras) | {"all", "dev", "dask", "images"})
    assert named, "README names no extra"
    assert named <= set(extras), f"README names extras that pyproject.toml lacks: {sorted(named - set(extras))}"


def test_all_extra_is_the_union_of_the_others():
    extras = _pyproject()["project"]["optional-dependencies"]
    others = {req for name, reqs in extras.items() if name != "all" for req in reqs}
    assert set(extras["all"]) == others


def test_license_metadata_and_dependencies():
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert any(r.startswith("pandas") for r in project["dependencies"])
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    build = _pyproject()["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(7[7-9]|[89]\d)(\.[\d.]+)?", r) for r in build), build


def test_citation_and_changelog():
    text = (ROOT / "CITATION.cff").read_text()
    try:
        import yaml
    except ImportError:  # a light check without PyYAML
        assert "cff-version: 1.2.0" in text and "\nreferences:" in text and "\ntitle:" in text
        return
    cff = yaml.safe_load(text)
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["type"] == "software"
    assert cff["version"] == _pyproject()["project"]["version"]
    titles = " ".join(r["title"] for r in cff["references"])
    for paper in ("Deep Matrix Factorization", "Leaky ReLU", "XOR Cluster", "Dichotomy", "Early-Time",
                  "Always Grok", "Benign overfitting in linear regression"):
        assert paper in titles
    assert all(r.get("authors") and r.get("year") and r.get("type") for r in cff["references"])
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{_pyproject()['project']['version']}]" in changelog
