"""Measurements of trained ensemble models that more than one setting uses: one implementation each.

Every function takes per-member tensors (leading member dimension E) and returns per-member values. Where
`theory` has the quantity (stable rank, KKT residual, max-margin classifiers, singular-value velocities),
the function here either calls it or is a torch twin kept for speed and tested equal to it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["singular_values", "stable_rank", "margin_gram", "gram_coordinates", "kkt_residuals",
           "max_margin_directions", "cosine", "effective_ranks", "velocity_rows", "mixture_error"]


def singular_values(W: torch.Tensor) -> torch.Tensor:
    """Singular values of each member's W [E, p, q], descending, [E, min(p, q)] (float64).

    From the eigenvalues of the smaller Gram matrix (W^T W or W W^T): 4x faster than an SVD of a tall
    [d, m] matrix and accurate to ~1e-8 s_1 for the values that matter here (the top ones and ||W||_F).
    """
    W = W.double()
    gram = W.transpose(1, 2) @ W if W.shape[1] >= W.shape[2] else W @ W.transpose(1, 2)
    return torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt().flip(1)


def stable_rank(sv: torch.Tensor) -> torch.Tensor:
    """||W||_F^2 / ||W||_2^2 = sum_i s_i^2 / s_1^2 from singular values sv [E, k] sorted descending -> [E].

    The torch twin of `theory.matrices.stable_rank` (tested equal), on values already computed for other
    metrics. Scale-invariant: the values are divided by s_1 before squaring, so no over- or underflow.
    """
    top = sv[:, :1].clamp_min(torch.finfo(sv.dtype).tiny)
    return (sv / top).pow(2).sum(dim=1)


def effective_ranks(W: torch.Tensor) -> torch.Tensor:
    """`theory.matrices.effective_rank` (entropy of the normalised singular values) of each member's W: [E]."""
    from theory.matrices import effective_rank

    vals = [effective_rank(w) for w in W.detach().double().cpu().numpy()]
    return torch.tensor(vals, dtype=W.dtype, device=W.device)


def cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine between per-member vectors u, v [E, ...] of one shape -> [E] (0 where either is zero)."""
    if u.shape != v.shape:
        raise ValueError(f"cosine: u of shape {tuple(u.shape)} and v of shape {tuple(v.shape)} differ; expected one "
                         "shape [E, ...]")
    u, v = u.flatten(1), v.flatten(1)
    den = (u.norm(dim=1) * v.norm(dim=1)).clamp_min(torch.finfo(u.dtype).tiny)
    return (u * v).sum(dim=1) / den


def mixture_error(w: torch.Tensor, mu_norm, noise_rate) -> torch.Tensor:
    """Exact test error of linear classifiers sign <w_e, x> on the two-cluster mixture of `sims.data.gaussian_mixture`.

    x = y~ mu + z with mu = mu_norm e_1, z ~ N(0, I_d): <w, x> y~ ~ N(<w, mu>, ||w||^2), so the error on clean labels
    is Phi(-<w, mu> / ||w||), and with labels flipped with probability eta (independently of x) it is
    eta + (1 - 2 eta) Phi(-<w, mu> / ||w||). w [E, d]; mu_norm and noise_rate floats or [E]. Returns [E] (1/2 for
    w = 0).
    """
    mu, eta = (torch.as_tensor(v, dtype=w.dtype, device=w.device) for v in (mu_norm, noise_rate))
    norm = w.norm(dim=1)
    z = torch.where(norm > 0, mu * w[:, 0] / norm.clamp_min(torch.finfo(w.dtype).tiny), torch.zeros_like(norm))
    return eta + (1 - 2 * eta) * torch.special.ndtr(-z)


def margin_gram(x: torch.Tensor, y: torch.Tensor, W: torch.Tensor, a: torch.Tensor, slope: float,
                xx: torch.Tensor | None = None):
    """Inner products of theta = W and the gradients g_i = grad_W y_i f(x_i), in closed form.

    For the two-layer net f(x) = sum_j a_j phi(<w_j, x>) with phi(z) = max(slope z, z) (ReLU: slope 0) and a
    fixed, g_i = y_i x_i (a * phi'(x_i W))^T [d, m], so <g_i, g_k> = y_i y_k <x_i, x_k> sum_j a_j^2 phi'_ij phi'_kj
    and <theta, g_i> = y_i f(x_i) (phi'(z) z = phi(z)). x [E, n, d], y [E, n], W [E, d, m], a [E, m];
    xx [E, n, n] = x x^T if already known. Returns the Gram matrix of (theta, g_1, ..., g_n), [E, n+1, n+1],
    and the margins q [E, n]. Never forms the [n, d, m] gradients.
    """
    pre = torch.bmm(x, W)  # [E, n, m]
    dphi = torch.where(pre > 0, torch.ones_like(pre), torch.full_like(pre, slope))  # [E, n, m]
    q = y * torch.einsum("enm,em->en", torch.where(pre > 0, pre, slope * pre), a)  # [E, n]
    act = dphi * a.unsqueeze(1)  # [E, n, m]
    xx = torch.bmm(x, x.transpose(1, 2)) if xx is None else xx
    gg = (y.unsqueeze(2) * y.unsqueeze(1)) * xx * torch.bmm(act, act.transpose(1, 2))
    E, n = q.shape
    gram = torch.empty(E, n + 1, n + 1, dtype=x.dtype, device=x.device)
    gram[:, 0, 0] = W.flatten(1).pow(2).sum(dim=1)
    gram[:, 0, 1:] = q
    gram[:, 1:, 0] = q
    gram[:, 1:, 1:] = gg
    return gram, q


def gram_coordinates(gram: np.ndarray) -> np.ndarray:
    """Rows v_0..v_n in R^(n+1) with <v_i, v_k> = gram[i, k] (gram PSD [n+1, n+1]).

    The KKT fit only uses inner products of theta and the gradients, so these coordinates give the same
    residual as the [d * m]-dimensional vectors.
    """
    e, V = np.linalg.eigh(gram)
    return V * np.sqrt(np.clip(e, 0.0, None))


def kkt_residuals(gram: torch.Tensor, q: torch.Tensor, degree: float = 1.0) -> torch.Tensor:
    """Per member: `theory.kkt.kkt_residual` of the parameter max-margin problem min ||theta||^2 s.t.
    y_i f(x_i) >= 1 for an L-homogeneous model (L = `degree`), from `margin_gram`'s outputs.

    NaN while some training point is misclassified (no margin to normalise). Returns [E] float64 (CPU).
    """
    from theory.kkt import kkt_residual

    out = []
    for G, qe in zip(gram.detach().cpu().double().numpy(), q.detach().cpu().double().numpy()):
        if not np.isfinite(G).all() or qe.min() <= 0:
            out.append(math.nan)
            continue
        C = gram_coordinates(G)
        out.append(kkt_residual(C[0], C[1:], qe, degree=degree))
    return torch.tensor(out, dtype=torch.float64)


def max_margin_directions(x: torch.Tensor, y: torch.Tensor, *, norm: str = "l2") -> torch.Tensor:
    """Unit max-margin direction (no bias) per member, x [E, n, d], y [E, n] -> [E, d] (float64, CPU).

    norm "l2": `theory.max_margin.l2_max_margin`; "l1": `theory.max_margin.l1_max_margin` (normalised in l2).
    """
    from theory import max_margin

    solve = {"l2": max_margin.l2_max_margin, "l1": max_margin.l1_max_margin}[norm]
    ws = []
    for xe, ye in zip(x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()):
        w = solve(xe, ye, bias=False).w
        ws.append(torch.from_numpy(w / np.linalg.norm(w)))
    return torch.stack(ws)


def velocity_rows(W0: np.ndarray, W1: np.ndarray, grad: np.ndarray, factors: list[np.ndarray], depth: int,
                  lr: float, *, top: int, min_fraction: float, max_gap: float):
    """Measured against predicted singular-value velocities of one deep factorisation between two GD steps.

    measured = (sigma_r(W1) - sigma_r(W0)) / lr; predicted = -N (sigma_r^2)^{1-1/N} <grad L(W0), u_r v_r^T>
    (`theory.matrices.singular_value_velocity`; Arora, Cohen, Hu, Luo 2019, Thm 3). W0, W1, grad [n, n];
    factors: the N factors at W0 (for the balancedness gap). A value is `used` in the theorem's regime:
    balanced factors (relative gap <= max_gap) and predicted speed >= min_fraction of the fastest of the
    top `top`. Returns (gap, predicted [top], measured [top], used [top]).
    """
    from theory import matrices

    gap = matrices.balancedness_gap(factors)
    pred = matrices.singular_value_velocity(W0, grad, depth)[:top]
    meas = (np.linalg.svd(W1, compute_uv=False) - np.linalg.svd(W0, compute_uv=False))[:top] / lr
    used = (np.abs(pred) >= min_fraction * np.abs(pred).max()) & (gap <= max_gap)
    return gap, pred, meas, used
