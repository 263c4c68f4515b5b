"""Input checks shared by the theory modules.

Every failure is a ``ValueError`` that names the argument, shows the offending value and says what
would be valid. The checks return clean float64 arrays so callers never re-convert.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _short(value) -> str:
    """A short description of a value for an error message."""
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array {np.array2string(value, precision=4)} of shape {value.shape}"
        return f"an array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_array(name: str, value, *, ndim: int, shape_doc: str) -> np.ndarray:
    """`value` as a finite, non-empty float64 array with `ndim` dimensions."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape {shape_doc}; got {_short(value)}") from exc
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of shape {shape_doc}; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {array.shape} (expected {shape_doc})")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} must be finite; got {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array


def matrix(name: str, value, *, shape_doc: str = "[n, d]") -> np.ndarray:
    return as_array(name, value, ndim=2, shape_doc=shape_doc)


def vector(name: str, value, *, length: int | None = None, shape_doc: str = "[n]") -> np.ndarray:
    array = as_array(name, value, ndim=1, shape_doc=shape_doc)
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have shape {shape_doc} = ({length},); got shape {array.shape}")
    return array


def labels(name: str, value, n: int) -> np.ndarray:
    """Labels in {-1, +1} as float64 [n]."""
    y = vector(name, value, length=n)
    values = np.unique(y)
    if not np.all(np.isin(values, (-1.0, 1.0))):
        raise ValueError(
            f"{name} must contain only the labels -1 and +1; got the values {_short(values)}. "
            f"Map two classes with y = np.where(labels == positive_class, 1, -1)"
        )
    return y


def square(name: str, value) -> np.ndarray:
    array = matrix(name, value, shape_doc="[n, n]")
    if array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be square [n, n]; got shape {array.shape}")
    return array


def real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {_short(value)}")
    return float(value)


def positive(name: str, value) -> float:
    number = real(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0; got {number}")
    return number


def nonnegative(name: str, value) -> float:
    number = real(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0; got {number}")
    return number


def integer(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {_short(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def choice(name: str, value, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {_short(value)}")
    return value


def indices(name: str, value, length: int, bound: int) -> np.ndarray:
    """An integer index array of shape [length] with entries in [0, bound), as int64."""
    array = np.asarray(value)
    if array.shape != (length,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be an integer array of shape [k] = ({length},) like values; got {array.dtype} {array.shape}"
        )
    if length and (array.min() < 0 or array.max() >= bound):
        raise ValueError(f"{name} must lie in [0, {bound}); got values from {array.min()} to {array.max()}")
    return array.astype(np.int64)
