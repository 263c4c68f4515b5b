"""Ensemble models equal the loop over their members (forward, loss, optimiser step)."""

import pytest
import torch
from hypothesis import given, strategies as st

from sims.nn import MLP, EnsembleLinear, TwoLayerNet, make_generators

F64 = torch.float64
# float64 rounding, amplified by batch norm's 1/std on small batches (N = 7): far below any real mismatch
TOL = dict(rtol=1e-9, atol=1e-10)


def _assert_members_match(model, x):
    out = model(x)
    for e in range(model.n_members):
        xe = x if x.dim() == 2 else x[e]
        torch.testing.assert_close(out[e], model.member(e)(xe), **TOL)


@given(E=st.integers(1, 4), d=st.integers(1, 6), width=st.integers(1, 9), depth=st.integers(1, 4),
       bn=st.booleans(), shared=st.booleans(), act=st.sampled_from(["relu", "leaky_relu", "linear"]))
def test_mlp_forward_equals_members(E, d, width, depth, bn, shared, act):
    model = MLP(d, width, 3, depth, make_generators(range(E)), act=act, slope=0.2, batch_norm=bn,
                init_scale=1.7, dtype=F64)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, d, generator=g, dtype=F64) if shared else torch.randn(E, 7, d, generator=g, dtype=F64)
    _assert_members_match(model, x)  # train mode (batch statistics)
    model.eval()
    _assert_members_match(model, x)  # eval mode (running statistics)


def test_two_layer_net_structure():
    m = TwoLayerNet(5, 6, make_generators([0, 1]), act="leaky_relu", slope=0.1, init_scale=0.01, dtype=F64)
    a = m[2].weight  # [E, m, 1]
    assert not a.requires_grad and m[0].weight.requires_grad
    torch.testing.assert_close(a[0, :, 0], torch.tensor([1, 1, 1, -1, -1, -1], dtype=F64) / 6 ** 0.5)
    assert abs(m[0].weight.std().item() - 0.01) < 0.005
    _assert_members_match(m, torch.randn(2, 4, 5, dtype=F64))


def test_member_e_equals_single_member_model():
    seeds = [3, 4, 5]
    big = MLP(4, 8, 2, 3, make_generators(seeds), dtype=F64)
    for e, s in enumerate(seeds):
        one = MLP(4, 8, 2, 3, make_generators([s]), dtype=F64)
        for pb, p1 in zip(big.parameters(), one.parameters()):
            torch.testing.assert_close(pb[e], p1[0])


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_optimizer_steps_equal_members(opt):
    E, N, d = 3, 10, 4
    model = MLP(d, 8, 1, 3, make_generators(range(E)), batch_norm=True, dtype=F64)
    members = [model.member(e) for e in range(E)]
    x = torch.randn(E, N, d, dtype=F64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(E, N, 1, dtype=F64, generator=torch.Generator().manual_seed(1))

    def make(params):
        if opt == "sgd":
            return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)
        return torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)

    big_opt = make(model.parameters())
    small_opts = [make(m.parameters()) for m in members]
    for _ in range(3):
        big_opt.zero_grad()
        losses = ((model(x) - y) ** 2).mean(dim=(1, 2))  # [E]
        losses.sum().backward()
        big_opt.step()
        for e, (m, o) in enumerate(zip(members, small_opts)):
            o.zero_grad()
            loss_e = ((m(x[e]) - y[e]) ** 2).mean()
            torch.testing.assert_close(loss_e, losses[e].detach(), **TOL)
            loss_e.backward()
            o.step()
    for e, m in enumerate(members):
        torch.testing.assert_close(model.member(e)(x[e]), m(x[e]), **TOL)


def test_bad_inputs():
    m = MLP(3, 4, 1, 2, make_generators([0, 1]))
    with pytest.raises(ValueError, match="members"):
        m(torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="input must be"):
        m(torch.randn(5))
    with pytest.raises(ValueError, match="member index"):
        m.member(2)
    with pytest.raises(ValueError, match="depth"):
        MLP(3, 4, 1, 0, make_generators([0]))
    with pytest.raises(ValueError, match="stream"):
        make_generators([0], "nope")
    lin = EnsembleLinear(3, 2, make_generators([0]))
    assert lin(torch.randn(5, 3)).shape == (1, 5, 2)
