"""lc.keys: the one place LC metric names are built and parsed."""

import pytest
from hypothesis import given, strategies as st

from lc.keys import LCKey, lc_keys, lc_name, per_site, radii, select

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789.", min_size=1, max_size=8)


@given(points=names, site=st.none() | names, radius=st.none() | st.floats(1e-4, 1e3))
def test_parse_inverts_str(points, site, radius):
    key = LCKey(points, site, radius)
    back = LCKey.parse(str(key))
    assert back.points == points and back.site == site
    assert (back.radius is None) == (radius is None)
    if radius is not None:
        assert back.radius == pytest.approx(radius, rel=1e-5)


def test_not_lc_names_give_none():
    for name in ["train_acc", "lc_", "lc_train@rx", "lc_train@r-1", "lc_a b", "loss", "lc_train@r0"]:
        assert LCKey.parse(name) is None, name


def test_select_by_value_not_alphabet():
    names = ["lc_train@r0.1", "lc_train@r0.5", "lc_train/fc1@r0.5", "lc_random@r0.1", "lc_random@r0.5", "loss"]
    assert select(names, "train", 0.5) == "lc_train@r0.5"
    assert select(names, "train", 0.5, site="fc1") == "lc_train/fc1@r0.5"
    assert radii(names) == [0.1, 0.5]
    with pytest.raises(KeyError, match="lc_train@r0.1"):
        select(names, "train", 0.25)
    # a single-radius probe writes no suffix: the setting's radius matches it
    assert select(["lc_train", "lc_train/fc1"], "train", 0.5) == "lc_train"
    assert [str(k) for k in lc_keys(names, total=True)] == [n for n in names if "/" not in n and n != "loss"]


def test_bad_parts_refused():
    for bad in [dict(points="a/b"), dict(points=""), dict(points="a", radius=0.0), dict(points="a", site="x@y")]:
        with pytest.raises(ValueError):
            LCKey(**bad)
    assert lc_name("train", 0.5) == "lc_train@r0.5"


def test_reading_names_imports_no_torch():
    """A command that only reads metric names (`sims show`, summaries) can use lc.keys without torch."""
    import subprocess
    import sys

    code = "import sys, lc.keys; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_per_site_and_label():
    assert per_site("lc_train/fc1@r0.5") and not per_site("lc_train@r0.5") and not per_site("a/b")
    assert LCKey.parse("lc_test/fc1@r0.25").label == "test/fc1@r0.25"
    assert LCKey("random").label == "random"
