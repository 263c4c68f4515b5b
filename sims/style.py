"""The house style of every figure `sims` draws, in one place: palette, reference lines, output format.

Colours are the Okabe-Ito palette (Okabe and Ito 2008), distinguishable under the common colour-vision
deficiencies. Reference lines (paper values, chance levels, predicted and measured times) take the styles of
`REFERENCES` in order within a panel, so two different references never look alike, and always carry a label.
The output format and resolution of `plots.save` are set for a block with `output(format, dpi)` (`sims plot
--format/--dpi`). `LC` is the style handed to `lc.plot` (which may not import sims) as its `style` argument.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["PALETTE", "REFERENCES", "FORMATS", "LC", "color", "reference", "reference_style", "output", "current",
           "check_format", "check_dpi"]

# Okabe-Ito, black first left out (it is kept for reference lines): orange, sky blue, bluish green, yellow, blue,
# vermillion, reddish purple, grey.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#999999")

# Reference-line styles, used in this order within one panel: no two share both colour and dash pattern.
REFERENCES = (dict(color="#000000", ls="--", lw=1.0), dict(color="#555555", ls=":", lw=1.4),
              dict(color="#000000", ls="-.", lw=1.0), dict(color="#777777", ls=(0, (5, 1, 1, 1, 1, 1)), lw=1.0),
              dict(color="#000000", ls=(0, (1, 3)), lw=1.4))

FORMATS = ("png", "pdf", "svg")
_OUTPUT = {"format": "png", "dpi": 120}

# What lc.plot draws with: the line colours, the class colours of a partition, the boundary and edge colours.
LC = dict(colors=PALETTE, classes=("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442"),
          boundary="#000000", edges=(0.0, 0.0, 0.0, 0.3))


def color(k: int) -> str:
    """The k-th colour of the palette (cycling)."""
    return PALETTE[k % len(PALETTE)]


def reference(ax, label: str, *, x: float | None = None, y: float | None = None):
    """A labelled reference line on `ax` (vertical at `x` or horizontal at `y`) in the next reference style of this
    panel (counted by the reference lines already drawn on it). Returns the line."""
    if (x is None) == (y is None):
        raise ValueError("reference: give exactly one of x (a vertical line) or y (a horizontal line)")
    if not label:
        raise ValueError("reference: a reference line needs a label")
    kw = reference_style(ax)
    return ax.axvline(x, label=label, **kw) if x is not None else ax.axhline(y, label=label, **kw)


def reference_style(ax) -> dict:
    """Keyword arguments of the next reference line on `ax` (for a reference drawn with `ax.plot`, e.g. a
    diagonal): the next style of REFERENCES, counted by the reference lines already on the panel."""
    k = sum(1 for line in ax.get_lines() if line.get_gid() == "reference")
    return dict(REFERENCES[k % len(REFERENCES)], gid="reference")


def check_format(fmt: str) -> str:
    """`fmt` if it is one of FORMATS, else ValueError naming the choices."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return fmt


def check_dpi(dpi) -> int:
    """`dpi` as an int in [20, 1200], else ValueError."""
    try:
        value = int(str(dpi))
    except ValueError:
        raise ValueError(f"dpi must be an integer from 20 to 1200; got {dpi!r}") from None
    if not 20 <= value <= 1200:
        raise ValueError(f"dpi must be an integer from 20 to 1200; got {dpi!r}")
    return value


def current() -> dict:
    """The output settings in force: {"format": ..., "dpi": ...}."""
    return dict(_OUTPUT)


@contextmanager
def output(format: str = "png", dpi: int = 120):
    """Within the block, `plots.save` writes `format` files at `dpi` (checked by check_format / check_dpi)."""
    new = {"format": check_format(format), "dpi": check_dpi(dpi)}
    old = dict(_OUTPUT)
    _OUTPUT.update(new)
    try:
        yield
    finally:
        _OUTPUT.update(old)
