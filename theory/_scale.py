"""Exact power-of-two rescaling, so that every computation runs on data of unit size.

Squares of float64 numbers overflow above ~1e154 and lose precision below ~1e-154, so a Gram
matrix X X^T, a norm ||x|| or a squared singular value formed from raw input goes wrong long before the
input itself does. The theory functions therefore divide their inputs by 2^e, with 2^e the power of
two nearest the largest entry (division by a power of two is exact, so the unit-scale problem is
exactly the caller's problem), solve at unit scale, and multiply the results back by the power of 2^e
that the mathematics prescribes (a margin by 2^e, a normal vector by 2^-e, a multiplier by 2^-2e, ...).
`restore` refuses a result that leaves the float64 range (overflow to inf, or a non-zero entry
flushed to zero) instead of returning it silently wrong.
"""

from __future__ import annotations

import numpy as np


def exponent(array) -> int:
    """e such that 2^e <= max |array| < 2^(e+1); 0 for an all-zero array."""
    top = float(np.max(np.abs(array)))
    return 0 if top == 0 else int(np.frexp(top)[1]) - 1


def unit(array, e: int) -> np.ndarray:
    """array * 2^-e, exact (no rounding) unless entries fall below the normal range."""
    return np.ldexp(np.asarray(array, dtype=np.float64), -e)


def restore(name: str, value, e: int):
    """value * 2^e (a float or an array), or ValueError if that leaves the float64 range."""
    array = np.asarray(value, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(array, e)
    if not np.all(np.isfinite(out)) or np.any((out == 0) & (array != 0)):
        raise ValueError(
            f"{name} = (value at unit scale) * 2^{e} is outside the float64 range (~1e-308..1e308): the input's "
            "scale is too extreme for this quantity; multiply the input by a power of ten and rescale the result"
        )
    return float(out) if np.ndim(value) == 0 else out
