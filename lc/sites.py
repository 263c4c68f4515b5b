"""Where local complexity is counted: the pre-activation entering each piecewise-linear module.

A *site* is a module whose input is a pre-activation z with a kink at z = 0 (ReLU, leaky ReLU, PReLU,
or any subclass of `PiecewiseLinear`). Forward hooks read that input; the hooks live only inside the
`capture` context manager and are removed in its `finally`, whatever the forward raised.

`nn.Identity` (the "activation" of a linear net) is linear, so it is never a site: a model whose only
activations are linear has no piecewise-linear partition to count and gets a `NoSitesError`.
Humayun, Balestriero, Baraniuk 2024, "Deep networks always grok and here is why": a neuron of a layer
counts towards the local complexity of a point when its pre-activation changes sign in the point's
neighbourhood.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence, Union

import torch
from torch import nn

__all__ = ["PiecewiseLinear", "NoSitesError", "SITE_TYPES", "find_sites", "capture", "no_sites_message"]


class PiecewiseLinear(nn.Module):
    """Marker base class: subclass it to have your activation module counted as an LC site.

    The module's input must be a pre-activation whose kink is at 0 (like ReLU): a unit counts when its
    input does not keep one strict sign over a neighbourhood.
    """


SITE_TYPES = (nn.ReLU, nn.LeakyReLU, nn.PReLU, PiecewiseLinear)

SiteSpec = Union[None, Sequence[str], Callable[[str, nn.Module], bool]]


class NoSitesError(ValueError):
    """The model has no piecewise-linear site (no ReLU-like module whose input a hook can read)."""


def no_sites_message(model: nn.Module) -> str:
    """Why `model` has no default sites, and what to do about it."""
    acts = sorted({type(m).__name__ for m in model.modules() if isinstance(m, nn.Identity)})
    linear = " Its nn.Identity modules are linear activations, not piecewise-linear sites." if acts else ""
    return (
        f"{type(model).__name__} has no piecewise-linear activation module (nn.ReLU, nn.LeakyReLU, nn.PReLU "
        "or a subclass of lc.PiecewiseLinear), so local complexity is not applicable: LC counts the units "
        "whose pre-activation changes sign, read by forward hooks on such modules." + linear + " If the "
        "model calls F.relu / torch.relu inside forward, use an nn.ReLU module instead (or wrap the "
        "function in a subclass of lc.PiecewiseLinear), or name the modules whose inputs are "
        "pre-activations with sites=[...]."
    )


def find_sites(model: nn.Module, sites: SiteSpec = None) -> list[tuple[str, nn.Module]]:
    """The (name, module) sites of `model`, in `model.named_modules()` order.

    sites: None (every `SITE_TYPES` module), a sequence of module names (as in `named_modules()`), or a
    filter `f(name, module) -> bool`. Raises `NoSitesError` when nothing is selected.
    """
    named = list(model.named_modules())
    if sites is None:
        found = [(n, m) for n, m in named if isinstance(m, SITE_TYPES)]
        if not found:
            raise NoSitesError(no_sites_message(model))
        return found
    if callable(sites):
        found = [(n, m) for n, m in named if sites(n, m)]
        if not found:
            raise NoSitesError(f"the sites filter {sites!r} selects no module of {type(model).__name__}; "
                               f"module names are {[n for n, _ in named]}")
        return found
    if isinstance(sites, str) or not all(isinstance(s, str) for s in sites):
        raise ValueError(f"sites must be None, a sequence of module names or a filter f(name, module) -> bool; "
                         f"got {sites!r}")
    by_name = dict(named)
    unknown = [s for s in sites if s not in by_name]
    if unknown:
        raise ValueError(f"sites names unknown modules {unknown}; valid names are {list(by_name)}")
    if len(set(sites)) != len(sites):
        raise ValueError(f"sites lists a module twice: {list(sites)}")
    if not sites:
        raise NoSitesError("sites is empty: name at least one module, or pass sites=None for the default")
    order = {n: i for i, (n, _) in enumerate(named)}
    return [(s, by_name[s]) for s in sorted(sites, key=order.__getitem__)]


@contextlib.contextmanager
def capture(modules: Sequence[nn.Module], fn: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Call `fn(i, z.detach())` with the input z of `modules[i]` at every forward, inside the block only.

    A module called several times per forward calls `fn` each time. Hooks are removed on exit, also
    when the forward raises.
    """
    handles = []
    try:
        for i, m in enumerate(modules):
            handles.append(m.register_forward_pre_hook(_hook(i, fn)))
        yield
    finally:
        for h in handles:
            h.remove()


def _hook(i: int, fn: Callable[[int, torch.Tensor], None]):
    def pre_hook(module, args):
        if not args or not torch.is_tensor(args[0]):
            raise ValueError(f"site module {type(module).__name__} was called without a tensor input")
        fn(i, args[0].detach())

    return pre_hook
