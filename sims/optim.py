"""Optimisers for ensembles whose state is per member (not per element).

`ScalarRMSprop` is the optimiser of Arora, Cohen, Hu, Luo (2019), the authors' "GroupRMSprop": RMSprop
with one scalar second moment, the EMA of the total squared gradient norm, instead of one per element.
Over an ensemble (parameters [E, ...]) it keeps one such scalar per member, so member e of an
E-member run takes exactly the steps of a one-member run.
"""

from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["ScalarRMSprop"]


class ScalarRMSprop(torch.optim.Optimizer):
    """Scalar-normalised RMSprop, one normaliser per ensemble member.

    For member e at step t (all parameters p of shape [E, ...] share the member dimension):

        v_e <- alpha v_e + (1 - alpha) sum_p ||grad_p[e]||^2       (EMA of the total squared gradient norm)
        p[e] <- p[e] - lr * grad_p[e] / (sqrt(v_e / (1 - alpha^t)) + eps)

    the authors' GroupRMSprop (github.com/roosephu/deep_matrix_factorization) with bias correction.
    Since the normaliser is a scalar per member, each member follows gradient descent on its own
    loss with a time-varying step size (the gradient-flow path is unchanged).

    The state (step t and v [E]) lives in the state of the first parameter, so `state_dict()` /
    `load_state_dict()` carry it and a resumed run continues exactly. Parameters without a
    gradient contribute nothing to the norm and are not moved.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-4):
        if not lr > 0:
            raise ValueError(f"lr must be > 0; got {lr}")
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1); got {alpha}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0; got {eps}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        if len(self.param_groups) != 1:
            raise ValueError(f"ScalarRMSprop takes one parameter group (one normaliser per member); "
                             f"got {len(self.param_groups)}")
        params = self.param_groups[0]["params"]
        E = params[0].shape[0] if params[0].dim() > 0 else 0
        if E == 0 or any(p.dim() == 0 or p.shape[0] != E for p in params):
            raise ValueError("every parameter must have the same leading member dimension E; got shapes "
                             f"{[tuple(p.shape) for p in params]}")
        self.n_members = E

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return loss
        state = self.state[group["params"][0]]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros(self.n_members, dtype=params[0].dtype, device=params[0].device)
        alpha, E = group["alpha"], self.n_members
        state["step"] += 1
        sq = sum(p.grad.reshape(E, -1).pow(2).sum(dim=1) for p in params)  # [E]
        state["square_avg"].mul_(alpha).add_(sq, alpha=1 - alpha)
        bias = 1 - alpha ** state["step"]
        scale = group["lr"] / ((state["square_avg"] / bias).sqrt() + group["eps"])  # [E]
        for p in params:
            p.sub_(p.grad * scale.view(E, *([1] * (p.dim() - 1))))
        return loss
