"""Optimisers for ensembles whose hyperparameters or state are per member (not per element).

Every parameter has a leading member dimension E. Elementwise optimisers with one learning rate are E
independent optimisers already (torch's SGD and AdamW); the classes here add per-member learning rates and
weight decays ([E] values), so that points of a sweep that differ only in lr or weight decay train as one
ensemble, each member exactly as its own one-member run (tested in float64):

- `EnsembleSGD`: torch.optim.SGD's update (momentum, L2 weight decay) with lr[e], weight_decay[e];
- `EnsembleAdamW`: torch.optim.AdamW's update (decoupled weight decay) with lr[e], weight_decay[e];
- `ScalarRMSprop`: the optimiser of Arora, Cohen, Hu, Luo (2019), the authors' "GroupRMSprop": RMSprop with
  one scalar second moment per member, the EMA of the member's total squared gradient norm.

`make(name, params, lr, weight_decay, momentum)` returns torch's own update (`SGD`, `AdamW`: torch's classes)
when every member shares lr and weight decay (the fastest path), else the ensemble version.

Every class here skips the wrappers by which torch's optimisers import `torch._dynamo` on their first
`add_param_group` / `step` / `zero_grad` / `state_dict` (about 1 s alone, 5 s on a busy 2-core machine) while
`torch._dynamo` is not loaded (`_NoDynamoImport`): the wrappers only matter under `torch.compile`, which loads it.
"""

from __future__ import annotations

import inspect
import math
import sys
from typing import Any, Iterable, Sequence

import torch

__all__ = ["ScalarRMSprop", "EnsembleSGD", "EnsembleAdamW", "SGD", "AdamW", "make"]


def _eager(method):
    """`method` as torch defines it if `torch._dynamo` is loaded (so `torch.compile` may be tracing), else the
    function inside its wrappers (`torch._disable_dynamo`, `_use_grad_for_differentiable`), which import
    `torch._dynamo` and otherwise only set the grad mode."""
    return method if "torch._dynamo" in sys.modules else inspect.unwrap(method)


class _NoDynamoImport:
    """Mixin before a `torch.optim.Optimizer` class: the same methods, without importing `torch._dynamo`."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _eager(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _eager(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _eager(torch.optim.Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _eager(torch.optim.Optimizer.load_state_dict)(self, state_dict)

    def _torch_step(self, cls: type, closure):
        """`cls.step` (a torch optimiser's), in the grad mode its wrapper sets (`defaults['differentiable']`)."""
        if "torch._dynamo" in sys.modules:
            return cls.step(self, closure)
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            return inspect.unwrap(cls.step)(self, closure)


class SGD(_NoDynamoImport, torch.optim.SGD):
    """torch.optim.SGD, without importing torch._dynamo (see the module docstring)."""

    def step(self, closure=None):
        return self._torch_step(torch.optim.SGD, closure)


class AdamW(_NoDynamoImport, torch.optim.AdamW):
    """torch.optim.AdamW, without importing torch._dynamo (see the module docstring)."""

    def step(self, closure=None):
        return self._torch_step(torch.optim.AdamW, closure)


def _per_member(value: float | Sequence[float], E: int, like: torch.Tensor, name: str) -> torch.Tensor:
    """A hyperparameter as an [E] tensor (a scalar is every member's value)."""
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if v.numel() == 1:
        v = v.expand(E)
    if v.numel() != E or not bool(torch.isfinite(v).all()) or bool((v < 0).any()):
        raise ValueError(f"{name} must be one finite value >= 0 or one per member ({E}); got {value!r}")
    return v


def _members(params: list[torch.Tensor]) -> int:
    E = params[0].shape[0] if params and params[0].dim() > 0 else 0
    if E == 0 or any(p.dim() == 0 or p.shape[0] != E for p in params):
        raise ValueError("every parameter must have the same leading member dimension E; got shapes "
                         f"{[tuple(p.shape) for p in params]}")
    return E


def _view(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (p.dim() - 1)))


class EnsembleSGD(_NoDynamoImport, torch.optim.Optimizer):
    """torch.optim.SGD (no dampening, no Nesterov) with a learning rate and an L2 weight decay per member:

        g = grad + wd[e] p;  buf = momentum buf + g (buf = g at the first step);  p <- p - lr[e] buf
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr, momentum: float = 0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        for group in self.param_groups:
            _members(group["params"])

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            E = _members(group["params"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                lr, wd = (_per_member(group[k], E, p, k) for k in ("lr", "weight_decay"))
                g = p.grad + _view(wd, p) * p
                if group["momentum"]:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    state["momentum_buffer"] = buf = g.clone() if buf is None else buf.mul_(group["momentum"]).add_(g)
                    g = buf
                p.sub_(_view(lr, p) * g)
        return loss


class EnsembleAdamW(_NoDynamoImport, torch.optim.Optimizer):
    """torch.optim.AdamW with a learning rate and a decoupled weight decay per member:

        p <- p (1 - lr[e] wd[e]);  m, v: the usual moments;  p <- p - lr[e] m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        for group in self.param_groups:
            _members(group["params"])

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            E, (b1, b2) = _members(group["params"]), group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                lr, wd = (_per_member(group[k], E, p, k) for k in ("lr", "weight_decay"))
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                t = state["step"]
                p.mul_(1 - _view(lr * wd, p))
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**t)).add_(group["eps"])
                p.sub_(_view(lr / (1 - b1**t), p) * state["exp_avg"] / denom)
        return loss


def make(name: str, params: list[torch.nn.Parameter], lr: Sequence[float], weight_decay: Sequence[float],
         momentum: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser `name` ('sgd' or 'adamw') for per-member lr and weight decay ([E] lists): torch's own update
    (`SGD`, `AdamW`) when every member has the same values, else `EnsembleSGD` / `EnsembleAdamW`."""
    shared = len(set(lr)) == 1 and len(set(weight_decay)) == 1
    if name == "sgd":
        if shared:
            return SGD(params, lr=lr[0], momentum=momentum, weight_decay=weight_decay[0])
        return EnsembleSGD(params, lr=list(lr), momentum=momentum, weight_decay=list(weight_decay))
    if name == "adamw":
        if shared:
            return AdamW(params, lr=lr[0], weight_decay=weight_decay[0])
        return EnsembleAdamW(params, lr=list(lr), weight_decay=list(weight_decay))
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {name!r}")


class ScalarRMSprop(_NoDynamoImport, torch.optim.Optimizer):
    """Scalar-normalised RMSprop, one normaliser per ensemble member.

    For member e at step t (all parameters p of shape [E, ...] share the member dimension):

        v_e <- alpha v_e + (1 - alpha) sum_p ||grad_p[e]||^2       (EMA of the total squared gradient norm)
        p[e] <- p[e] - lr[e] * grad_p[e] / (sqrt(v_e / (1 - alpha^t)) + eps)

    the authors' GroupRMSprop (github.com/roosephu/deep_matrix_factorization) with bias correction.
    Since the normaliser is a scalar per member, each member follows gradient descent on its own
    loss with a time-varying step size (the gradient-flow path is unchanged).

    The state (step t and v [E]) lives in the state of the first parameter, so `state_dict()` /
    `load_state_dict()` carry it and a resumed run continues exactly. Parameters without a
    gradient contribute nothing to the norm and are not moved.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float | Sequence[float] = 1e-3, alpha: float = 0.99,
                 eps: float = 1e-4):
        if not all(v > 0 for v in (lr if isinstance(lr, (list, tuple)) else [lr])):
            raise ValueError(f"lr must be > 0 (one value, or one per member); got {lr}")
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1); got {alpha}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0; got {eps}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        if len(self.param_groups) != 1:
            raise ValueError(f"ScalarRMSprop takes one parameter group (one normaliser per member); "
                             f"got {len(self.param_groups)}")
        self.n_members = _members(self.param_groups[0]["params"])

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
        lr = _per_member(group["lr"], E, state["square_avg"], "lr")
        scale = lr / ((state["square_avg"] / bias).sqrt() + group["eps"])  # [E]
        for p in params:
            p.sub_(p.grad * scale.view(E, *([1] * (p.dim() - 1))))
        return loss
