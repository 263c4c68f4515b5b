"""Input checks shared by the theory modules.

Every failure is a ``ValueError`` that names the argument, shows the offending value and says what
would be valid. The checks return clean float64 arrays so callers never re-convert.

Inputs are converted only where the conversion loses nothing, and refused otherwise:

- complex values (Python, numpy or torch) are refused: the theory is real-valued, and dropping the imaginary
  part silently would answer a different question;
- a torch tensor (recognised by duck typing, theory never imports torch) is converted with
  ``.detach().cpu().numpy()`` when it does not require gradients; one with ``requires_grad`` is refused (call
  ``.detach()`` yourself: results here do not flow back into autograd);
- a 0-d array (numpy or torch) is converted to its number where a number is expected; where an array is
  expected it is refused with the shape that was needed.

Results that leave the float64 range raise (`finite`), they are never returned as inf.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _short(value) -> str:
    """A short description of a value for an error message."""
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array {' '.join(np.array2string(value, precision=4).split())} of shape {value.shape}"
        return f"an array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_tensor(name: str, value):
    """A torch tensor (duck-typed) as a numpy array; ValueError when it requires gradients."""
    if not (hasattr(value, "requires_grad") and hasattr(value, "detach")):
        return value
    if value.requires_grad:
        raise ValueError(f"{name} is a tensor that requires gradients; theory functions take plain arrays and "
                         f"their results do not flow back into autograd: pass {name}.detach()")
    return value.detach().cpu().numpy()


def _real_only(name: str, value) -> None:
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real; got complex values (dtype {np.asarray(value).dtype}); pass the "
                         "real part (np.real) or the modulus (np.abs) explicitly if that is what you mean")


def as_array(name: str, value, *, ndim: int, shape_doc: str) -> np.ndarray:
    """`value` as a finite, non-empty float64 array with `ndim` dimensions (see the module docstring)."""
    value = _from_tensor(name, value)
    bad = f"{name} must be a numeric array of shape {shape_doc}; got {_short(value)}"
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(bad) from exc
    _real_only(name, raw)
    try:
        array = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(bad) from exc
    if array.ndim != ndim:
        hint = f"; wrap a single number as {'[' * ndim}x{']' * ndim}" if array.ndim == 0 else ""
        raise ValueError(f"{name} must be a {ndim}-D array of shape {shape_doc}; got shape {array.shape}{hint}")
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
    """A finite real number; a 0-d array or tensor holding one is converted (see the module docstring)."""
    value = _from_tensor(name, value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got the complex {_short(value)}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {_short(value)}")
    return float(value)


def finite(name: str, value: float, inputs: str = "") -> float:
    """`value` if it is finite, else ValueError: a result that overflows is unrepresentable, not inf."""
    if not math.isfinite(value):
        where = f" for {inputs}" if inputs else ""
        raise ValueError(f"{name} is {value}{where}: the result is outside the float64 range (~1.8e308); "
                         "use less extreme inputs")
    return value


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
    value = _from_tensor(name, value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
        value = value.item()
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
