"""theory refuses or converts explicitly what it cannot take as it is (issue 21.8): complex values are refused,
tensors with gradients are refused and gradient-free tensors converted, 0-d arrays convert where a number is
expected and are refused where an array is, and a result beyond the float64 range raises instead of being inf."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import dichotomy, early_time, linear_regression, matrices, max_margin

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)
SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 5))
FLOATS = st.floats(-1e3, 1e3, allow_nan=False)

# functions of one matrix argument (its name in the messages), with the doubles they return
MATRIX_FUNCTIONS = {"stable_rank": (matrices.stable_rank, "M"), "effective_rank": (matrices.effective_rank, "M"),
                    "affine_ntk": (lambda X: early_time.affine_ntk(X, early_time.RELU, "both"), "X")}


def _matrix(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@PROPERTY
@given(shape=SHAPES, seed=st.integers(0, 2**16), imag=st.floats(1e-300, 1e3))
def test_complex_input_is_refused(shape, seed, imag):
    M = _matrix(shape, seed).astype(complex)
    M[0, 0] += 1j * imag
    for name, (fn, arg) in MATRIX_FUNCTIONS.items():
        with pytest.raises(ValueError, match=f"{arg} must be real; got complex values"):
            fn(M)
        with pytest.raises(ValueError, match=f"{arg} must be real"):
            fn(M.tolist())  # Python complex numbers too
        with pytest.raises(ValueError, match=f"{arg} must be real"):
            fn(torch.from_numpy(M))
    with pytest.raises(ValueError, match="alpha must be a real number; got the complex"):
        dichotomy.transition_time(complex(3.0, imag), 0.1)


@PROPERTY
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_tensors_with_gradients_are_refused_and_others_converted(shape, seed):
    M = _matrix(shape, seed)
    for name, (fn, arg) in MATRIX_FUNCTIONS.items():
        with pytest.raises(ValueError, match=f"{arg} is a tensor that requires gradients.*{arg}.detach()"):
            fn(torch.tensor(M, requires_grad=True))
        expected = fn(M)
        for tensor in (torch.tensor(M), torch.tensor(M.T).T,  # contiguous or not
                       torch.tensor(M, requires_grad=True).detach()):
            np.testing.assert_array_equal(fn(tensor), expected)
    with pytest.raises(ValueError, match="lam is a tensor that requires gradients"):
        dichotomy.transition_time(10.0, torch.tensor(0.1, requires_grad=True))


@PROPERTY
@given(alpha=st.floats(1.001, 1e6), lam=st.floats(1e-6, 1e3))
def test_zero_dimensional_numbers_convert(alpha, lam):
    expected = dichotomy.transition_time(alpha, lam)
    assert dichotomy.transition_time(np.array(alpha), np.array(lam)) == expected
    assert dichotomy.transition_time(torch.tensor(alpha, dtype=torch.float64), lam) == expected
    assert linear_regression.optimal_ridge_penalty(np.array(7), sigma=np.array(lam), theta_norm=alpha) == \
        linear_regression.optimal_ridge_penalty(7, sigma=lam, theta_norm=alpha)


@PROPERTY
@given(value=FLOATS)
def test_zero_dimensional_arrays_are_refused_where_an_array_is_needed(value):
    with pytest.raises(ValueError, match=r"M must be a 2-D array of shape \[m, n\]; got shape \(\); wrap a single "
                                         r"number as \[\[x\]\]"):
        matrices.stable_rank(np.array(value))
    with pytest.raises(ValueError, match=r"spectrum must be a 1-D array.*wrap a single number as \[x\]"):
        linear_regression.effective_ranks(np.array(abs(value) + 1.0))


EXPONENTS = st.floats(-307.0, 307.0).map(lambda p: 10.0**p)  # log-uniform over the float64 range


def _finite_or_refused(fn, *args, **kwargs):
    """fn's result if it is finite; None if fn raised ValueError naming the float64 range or an argument."""
    try:
        out = fn(*args, **kwargs)
    except ValueError as err:
        assert "float64 range" in str(err) or " must " in str(err), err
        return None
    total = getattr(out, "total", out)  # a BenignBound: its total
    values = [total] if np.ndim(total) == 0 else list(np.ravel(total))
    assert all(math.isfinite(v) for v in values), (fn, args, kwargs, out)
    return out


@settings(max_examples=200, deadline=None, derandomize=True)
@given(a=EXPONENTS, b=EXPONENTS, c=st.floats(0.01, 0.99))
def test_results_never_overflow_silently(a, b, c):
    _finite_or_refused(dichotomy.transition_time, 1.0 + a, b)
    _finite_or_refused(dichotomy.early_phase_end, 1.0 + a, b, c)
    _finite_or_refused(dichotomy.late_phase_start, 1.0 + a, b, c)
    _finite_or_refused(dichotomy.time_to_steps, a, b)
    _finite_or_refused(dichotomy.steps_to_time, a, b)
    _finite_or_refused(dichotomy.margin_error_bound, a, min(b, 1.0), 10)
    _finite_or_refused(linear_regression.optimal_ridge_penalty, 10, a, b)
    _finite_or_refused(linear_regression.isotropic_min_norm_risk, 10, 50, a, b)
    _finite_or_refused(linear_regression.isotropic_min_norm_risk, 50, 10, a, b)
    _finite_or_refused(linear_regression.isotropic_ridge_risk, np.eye(3), 1.0, a, b)
    _finite_or_refused(linear_regression.benign_bound_terms, np.ones(100), 10, a, b)  # k* = 0: finite terms


def test_the_issue_examples():
    with pytest.raises(ValueError, match="must be real"):
        matrices.stable_rank([[1 + 5j, 0], [0, 1]])
    with pytest.raises(ValueError, match="transition_time is inf for alpha=1e\\+308, lam=1e-308"):
        dichotomy.transition_time(1e308, 1e-308)
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    with pytest.raises(ValueError, match="X is a tensor that requires gradients"):
        max_margin.l2_max_margin(X, [1.0, -1.0])


def test_theory_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, theory.matrices, theory.dichotomy, theory._validate; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == \
        "False"
