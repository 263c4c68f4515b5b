"""The per-member losses and accuracies of `sims.settings.common` equal a loop over members and points, and
refuse output / target pairs whose shapes do not match (no silent broadcasting)."""

import math

import pytest
import torch
from hypothesis import given, strategies as st

from sims import metrics
from sims.settings.common import argmax_accuracy, cross_entropy, logistic_loss, sign_accuracy, squared_loss

F64 = torch.float64
TOL = dict(rtol=1e-12, atol=1e-12)
sizes = dict(E=st.integers(1, 4), N=st.integers(1, 6), seed=st.integers(0, 2 ** 16))


def _randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _signs(seed, E, N):
    return torch.where(_randn(seed + 1, E, N) >= 0, 1.0, -1.0).to(F64)


@given(**sizes, single=st.booleans())
def test_logistic_loss_equals_loop(E, N, seed, single):
    out, y = _randn(seed, E, N, 1) if single else _randn(seed, E, N), _signs(seed, E, N)
    loop = [sum(math.log1p(math.exp(-float(y[e, i]) * float(out[e].flatten()[i]))) for i in range(N)) / N
            for e in range(E)]
    torch.testing.assert_close(logistic_loss(out, y), torch.tensor(loop, dtype=F64), **TOL)


@given(**sizes, single=st.booleans(), tie=st.sampled_from([0.0, 0.5]))
def test_sign_accuracy_equals_loop(E, N, seed, single, tie):
    out = torch.round(_randn(seed, E, N, 1) if single else _randn(seed, E, N))  # some exact zeros: ties
    y = _signs(seed, E, N)
    loop = []
    for e in range(E):
        o = out[e].flatten().tolist()
        loop.append(sum(tie if o[i] == 0 else float((o[i] > 0) == (y[e, i] > 0)) for i in range(N)) / N)
    torch.testing.assert_close(sign_accuracy(out, y, tie=tie), torch.tensor(loop, dtype=F64), **TOL)


@given(**sizes, K=st.integers(0, 3), single=st.booleans())
def test_squared_loss_equals_loop(E, N, seed, K, single):
    y = _randn(seed, E, N) if single else _randn(seed, E, N, *([K] if K else []))
    out = _randn(seed + 7, E, N, 1) if single else _randn(seed + 7, *y.shape)
    loop = [sum((float(a) - float(b)) ** 2 for a, b in zip(out[e].flatten(), y[e].flatten())) / y[e].numel()
            for e in range(E)]
    torch.testing.assert_close(squared_loss(out, y), torch.tensor(loop, dtype=F64), **TOL)


@given(**sizes, K=st.integers(1, 5))
def test_cross_entropy_and_argmax_accuracy_equal_loop(E, N, seed, K):
    out = _randn(seed, E, N, K)
    y = torch.randint(K, (E, N), generator=torch.Generator().manual_seed(seed + 3))
    ce, acc = [], []
    for e in range(E):
        rows = [(out[e, i].tolist(), int(y[e, i])) for i in range(N)]
        ce.append(sum(math.log(sum(math.exp(v) for v in o)) - o[k] for o, k in rows) / N)
        acc.append(sum(float(max(range(K), key=o.__getitem__) == k) for o, k in rows) / N)
    torch.testing.assert_close(cross_entropy(out, y), torch.tensor(ce, dtype=F64), **TOL)
    torch.testing.assert_close(argmax_accuracy(out, y), torch.tensor(acc, dtype=F64), **TOL)


def test_squared_loss_single_output_is_not_broadcast():
    """The issue's one-member check: out [1, n, 1] against y [1, n] is the mean of (out_i - y_i)^2, not the mean
    over the broadcast [1, n, n] table of every out_i - y_j."""
    out = torch.tensor([[[3.0], [0.0], [0.0]]], dtype=F64)
    y = torch.tensor([[0.0, 3.0, 0.0]], dtype=F64)
    want = (3 ** 2 + 3 ** 2 + 0) / 3  # 6; the broadcast table averages to 36 / 9 = 4
    torch.testing.assert_close(squared_loss(out, y), torch.tensor([want], dtype=F64), **TOL)
    assert abs(float((out - y).pow(2).mean()) - want) > 1  # the broadcast would be wrong on this case


@pytest.mark.parametrize("fn, out, y", [
    (squared_loss, (2, 5, 3), (2, 5)),
    (squared_loss, (2, 5, 1), (2, 1, 5)),
    (squared_loss, (5, 2), (2, 5)),
    (logistic_loss, (2, 5, 2), (2, 5)),
    (logistic_loss, (5, 2), (2, 5)),
    (sign_accuracy, (2, 5, 1), (2, 5, 1)),
    (cross_entropy, (2, 5), (2, 5)),
    (cross_entropy, (2, 5, 3), (2, 4)),
    (argmax_accuracy, (2, 5, 3), (5, 2)),
])
def test_mismatched_shapes_raise_naming_both(fn, out, y):
    label = torch.zeros(y, dtype=torch.long) if fn in (cross_entropy, argmax_accuracy) else torch.ones(y, dtype=F64)
    with pytest.raises(ValueError, match=fn.__name__) as err:
        fn(torch.zeros(out, dtype=F64), label)
    assert str(tuple(out)) in str(err.value) and str(tuple(y)) in str(err.value)


def test_cross_entropy_refuses_float_labels():
    with pytest.raises(ValueError, match="integer labels"):
        cross_entropy(torch.zeros(2, 5, 3, dtype=F64), torch.zeros(2, 5, dtype=F64))


@given(**sizes)
def test_cosine_equals_loop(E, N, seed):
    u, v = _randn(seed, E, N, 2), _randn(seed + 5, E, N, 2)
    loop = [float((u[e] * v[e]).sum() / (u[e].norm() * v[e].norm())) for e in range(E)]
    torch.testing.assert_close(metrics.cosine(u, v), torch.tensor(loop, dtype=F64), **TOL)


def test_cosine_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(1, 3\)"):
        metrics.cosine(torch.ones(2, 3), torch.ones(1, 3))
