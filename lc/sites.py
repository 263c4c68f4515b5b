"""Where local complexity is counted: the pre-activations that enter the piecewise-linear activations.

A *site* is a tensor of pre-activations z whose activation has its kink at z = 0, read by a forward hook:

- an input site is the input of an activation module (ReLU, leaky ReLU, PReLU, or any subclass of
  `PiecewiseLinear`), found by default or named with `sites=`;
- an output site is the output of a module named with `output_sites=`, for activations applied as
  functions inside `forward` (`F.relu(self.fc1(x))`: name "fc1"), which have no module to hook.

The hooks live only inside the `capture` context manager and are removed in its `finally`, whatever the
forward raised.

`nn.Identity` (the "activation" of a linear net) is linear, so it is never a site: a model whose only
activations are linear has no piecewise-linear partition to count and gets a `NoSitesError`.
Humayun, Balestriero, Baraniuk 2024, "Deep networks always grok and here is why": a neuron of a layer
counts towards the local complexity of a point when its pre-activation changes sign in the point's
neighbourhood.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterator, Sequence, Union

import torch
from torch import nn

__all__ = ["PiecewiseLinear", "NoSitesError", "SITE_TYPES", "Site", "find_sites", "resolve_sites", "capture",
           "no_sites_message"]


class PiecewiseLinear(nn.Module):
    """Marker base class: subclass it to have your activation module counted as an LC site.

    The module's input must be a pre-activation whose kink is at 0 (like ReLU): a unit counts when its
    input does not keep one strict sign over a neighbourhood.
    """


SITE_TYPES = (nn.ReLU, nn.LeakyReLU, nn.PReLU, PiecewiseLinear)

SiteSpec = Union[None, Sequence[str], Callable[[str, nn.Module], bool]]
AFFINE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Bilinear)


@dataclasses.dataclass(frozen=True)
class Site:
    """One place where units are counted: the input or the output (`reads`) of the module `name`."""

    name: str
    module: nn.Module
    reads: str  # "input" (an activation module's input) or "output" (a module feeding a functional activation)


class NoSitesError(ValueError):
    """The model has no piecewise-linear site (no ReLU-like module whose input a hook can read)."""


def no_sites_message(model: nn.Module) -> str:
    """Why `model` has no default sites, and what to do about it (naming its affine modules)."""
    acts = sorted({type(m).__name__ for m in model.modules() if isinstance(m, nn.Identity)})
    linear = " Its nn.Identity modules are linear activations, not piecewise-linear sites." if acts else ""
    affine = [n for n, m in model.named_modules() if n and isinstance(m, AFFINE_TYPES)]
    example = f"output_sites={affine[:-1] or affine}" if affine else "output_sites=['fc1', 'fc2']"
    listed = f" Its affine modules are {affine}." if affine else ""
    return (
        f"{type(model).__name__} has no piecewise-linear activation module (nn.ReLU, nn.LeakyReLU, nn.PReLU "
        "or a subclass of lc.PiecewiseLinear), so local complexity is not applicable: LC counts the units "
        "whose pre-activation changes sign, read by forward hooks on such modules." + linear + " If the "
        "model calls F.relu / torch.relu (or another activation with its kink at 0) inside forward, name the "
        "modules whose OUTPUT is that activation's input: lc.local_complexity(..., output_sites=[...]) or "
        "lc.Probe(..., output_sites=[...]) (for "
        f"F.relu(self.fc1(x)) name 'fc1'; here perhaps {example}, leaving out the last layer unless "
        "an activation follows it)." + listed + " Alternatively use an nn.ReLU module instead of the function, "
        "or name the modules whose inputs are pre-activations with sites=[...]."
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


def resolve_sites(model: nn.Module, sites: SiteSpec = None, output_sites: Sequence[str] | None = None) -> list[Site]:
    """Every site of `model`, in `model.named_modules()` order: input sites from `sites` (see `find_sites`),
    output sites from `output_sites` (module names, for activations applied as functions in forward).

    With `output_sites` given and `sites=None`, the default input sites may be empty (a model whose only
    activations are functional). A module named in both is an error (its input and output cannot both be
    pre-activations of the same units). Raises `NoSitesError` when there is no site at all.
    """
    if output_sites is None:
        return [Site(n, m, "input") for n, m in find_sites(model, sites)]
    if isinstance(output_sites, str) or not all(isinstance(s, str) for s in output_sites):
        raise ValueError(f"output_sites must be None or a sequence of module names; got {output_sites!r}")
    named = list(model.named_modules())
    by_name = dict(named)
    unknown = [s for s in output_sites if s not in by_name]
    if unknown:
        raise ValueError(f"output_sites names unknown modules {unknown}; valid names are {list(by_name)}")
    if len(set(output_sites)) != len(output_sites):
        raise ValueError(f"output_sites lists a module twice: {list(output_sites)}")
    if not output_sites:
        raise NoSitesError("output_sites is empty: name at least one module, or pass output_sites=None")
    if sites is None:
        inputs = [(n, m) for n, m in named if isinstance(m, SITE_TYPES)]
    else:
        inputs = find_sites(model, sites)
    both = sorted({n for n, _ in inputs} & set(output_sites))
    if both:
        raise ValueError(f"modules {both} are both input sites and output_sites; name each module once")
    order = {n: i for i, (n, _) in enumerate(named)}
    found = [Site(n, m, "input") for n, m in inputs] + [Site(n, by_name[n], "output") for n in output_sites]
    return sorted(found, key=lambda site: order[site.name])


@contextlib.contextmanager
def capture(sites: Sequence[Site], fn: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Call `fn(i, z.detach())` with the tensor site i reads (its module's input or output) at every
    forward, inside the block only.

    A module called several times per forward calls `fn` each time. Hooks are removed on exit, also
    when the forward raises.
    """
    handles = []
    try:
        for i, site in enumerate(sites):
            if site.reads == "input":
                handles.append(site.module.register_forward_pre_hook(_input_hook(i, fn)))
            else:
                handles.append(site.module.register_forward_hook(_output_hook(i, fn)))
        yield
    finally:
        for h in handles:
            h.remove()


def _input_hook(i: int, fn: Callable[[int, torch.Tensor], None]):
    def pre_hook(module, args):
        if not args or not torch.is_tensor(args[0]):
            raise ValueError(f"site module {type(module).__name__} was called without a tensor input")
        fn(i, args[0].detach())

    return pre_hook


def _output_hook(i: int, fn: Callable[[int, torch.Tensor], None]):
    def hook(module, args, out):
        if not torch.is_tensor(out):
            raise ValueError(f"output site {type(module).__name__} returned {type(out).__name__}, not a tensor")
        fn(i, out.detach())

    return hook
