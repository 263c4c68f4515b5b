"""Local complexity (LC): how many units of a piecewise-linear network change sign around a point.

Humayun, Balestriero, Baraniuk 2024, "Deep networks always grok and here is why" (section 3 and their
code): the neighbourhood of x is the cross-polytope with the 2P vertices x +- r v_p for P orthonormal
directions v_p; a unit of a layer is *crossed* when its pre-activation is neither strictly positive at
every vertex nor strictly negative at every vertex, i.e. when one of the layer's (bent) hyperplanes meets
the neighbourhood. The LC of x is the number of crossed units summed over layers; a point set is
summarised by its mean. A unit that is exactly 0 at every vertex (a pruned unit) has no kink there
and is not crossed. For one hidden layer the count is exact: unit j is crossed iff
|w_j.x + b_j| <= r max_p |w_j.v_p| and not both sides are 0 (the hyperplane meets the cross-polytope).

Two passes with separate hooks: one forward of one centre measures the units of each site (and checks
that x fits the model); then the chunk loop forwards the vertices of a chunk of points while a
`_CrossingCounter` hook reduces each site to crossed units per point (amin/amax over the vertices), so
no activation outlives its layer. Memory is bounded by one chunk, not by N x 2P vertices.

Two evaluation paths give the same counts:

- plain: forward the 2P (+1) vertices of a chunk of points through the model;
- shortcut (default where it applies): when the model is an `nn.Sequential` whose first children are
  nn.Flatten modules (plain models; they keep dim 0) followed by an affine map of the input (nn.Linear,
  nn.Conv1d/2d/3d, or an ensemble linear layer with weight [E, in, out]), that map's output at the
  vertices is (W x + b) +- r (W v_p), with W V computed once per call for a shared frame (the frame lives
  in the unflattened input shape; Flatten is linear and per point); the rest of the model runs on those
  values. This skips the widest matmul (the input layer) on 2P vertices. The two paths round differently,
  so in float32 a pre-activation within rounding of 0 at some vertex may flip a count between them; in
  float64 they agree (tests check equality in float64).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .frames import PerPointFrames, cpu_generator, check_frame, orthonormal_frame
from .sites import NoSitesError, Site, SiteSpec, capture, no_sites_message, resolve_sites

__all__ = ["LCResult", "local_complexity", "ensemble_size", "check_finite_model", "finite_members", "check_radius",
           "point_layout", "model_tensors"]

# Default chunk: about this many elements in the widest per-vertex tensor of one chunk. On a CPU, 2**17 (1 MiB
# in float64) keeps a layer's pre-activations in a core's L2 cache between the matmul, the hook's min/max and
# the activation (per vertex ~35% faster than 2**20 for 200 units); elsewhere (GPUs) 2**20, where larger
# kernels pay and memory is plentiful.
CHUNK_ELEMENTS = {"cpu": 2**17}
CHUNK_ELEMENTS_OTHER = 2**20


@dataclasses.dataclass(frozen=True)
class LCResult:
    """Local complexity of N points at S sites (Humayun et al. 2024).

    counts: int64 [N, S], or [E, N, S] for an ensemble model (member e's counts in counts[e]): the number
        of crossed units of each site in each point's neighbourhood.
    units: int64 [S], units per site (a Conv2d site has channels x positions units).
    site_names: the S site names (module names from `named_modules()`; "output" for the model output).
    radius, n_dirs, include_center: the neighbourhood used.
    """

    counts: torch.Tensor
    units: torch.Tensor
    site_names: tuple[str, ...]
    radius: float
    n_dirs: int
    include_center: bool = False

    @property
    def fractions(self) -> torch.Tensor:
        """counts / units, float64, same shape as counts."""
        return self.counts.double() / self.units.double()

    @property
    def per_point(self) -> torch.Tensor:
        """LC of each point (sum over sites): int64 [N] or [E, N]."""
        return self.counts.sum(-1)

    def mean(self) -> torch.Tensor:
        """Mean LC over the points: float64 0-d tensor, or [E] for an ensemble."""
        return self.per_point.double().mean(-1)


def ensemble_size(model: nn.Module) -> int | None:
    """E for a model with an integer `n_members` attribute (an ensemble), else None."""
    E = getattr(model, "n_members", None)
    return E if isinstance(E, int) and not isinstance(E, bool) else None


def _model_dtype_device(model: nn.Module, x: torch.Tensor) -> tuple[torch.dtype, torch.device]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return x.dtype, x.device


def _ensemble_in_features(model: nn.Module, E: int) -> int | None:
    """in_features of the first module with a 3-D weight [E, in, out] (the ensemble affine map)."""
    for m in model.modules():
        w = getattr(m, "weight", None)
        if torch.is_tensor(w) and w.dim() == 3 and w.shape[0] == E:
            return int(w.shape[1])
    return None


def point_layout(model: nn.Module, x: torch.Tensor, E: int | None) -> tuple[bool, tuple[int, ...]]:
    """(per_member, point_shape) of x: x is [N, *point] or, for an ensemble, [E, N, *point]."""
    shape = tuple(x.shape)
    if E is None:
        if x.dim() < 2:
            raise ValueError(f"x must be [N, *input_shape]; got shape {shape}")
        return False, shape[1:]
    d = _ensemble_in_features(model, E)
    if d is not None:
        if x.dim() == 2 and shape[1] == d:
            return False, (d,)
        if x.dim() == 3 and shape[0] == E and shape[2] == d:
            return True, (d,)
        raise ValueError(f"x must be [N, {d}] (shared by the {E} members) or [{E}, N, {d}] (per member); "
                         f"got shape {shape}")
    if x.dim() >= 3 and shape[0] == E:
        return True, shape[2:]
    if x.dim() < 2:
        raise ValueError(f"x must be [N, *input_shape] or [{E}, N, *input_shape]; got shape {shape}")
    return False, shape[1:]


def model_tensors(model: nn.Module):
    """(kind, name, tensor) of every floating parameter and buffer of `model`."""
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in named:
            if t.is_floating_point():
                yield kind, name, t


def _all_finite(t: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """isfinite(t).all() (over `dim` if given) from amin and amax, which propagate NaN: no t-sized temporary."""
    if t.numel() == 0:
        return torch.ones((), dtype=torch.bool) if dim is None else torch.ones(t.shape[0], dtype=torch.bool)
    lo, hi = (t.amin(), t.amax()) if dim is None else (t.amin(dim), t.amax(dim))
    return torch.isfinite(lo) & torch.isfinite(hi)


def finite_members(model: nn.Module, E: int) -> torch.Tensor:
    """bool [E]: member e has only finite parameters and buffers (a tensor whose dim 0 is E belongs to the
    members row by row; any other tensor is shared, and a non-finite one makes every member non-finite)."""
    ok = torch.ones(E, dtype=torch.bool)
    for _, _, t in model_tensors(model):
        if t.dim() >= 1 and t.shape[0] == E:
            ok &= _all_finite(t.detach().reshape(E, -1), dim=1).cpu()
        elif not bool(_all_finite(t.detach())):
            ok[:] = False
    return ok


def check_finite_model(model: nn.Module) -> None:
    """Raise ValueError naming the first parameter or buffer of `model` with a NaN or infinite entry.

    LC of a model with non-finite weights is undefined (its pre-activations are NaN or infinite), so no
    count is returned for it. For an ensemble the message names the offending members.
    """
    E = ensemble_size(model)
    for kind, name, t in model_tensors(model):
        if bool(_all_finite(t.detach())):
            continue
        bad = ~torch.isfinite(t.detach())
        where = ""
        if E is not None and t.dim() >= 1 and t.shape[0] == E:
            where = f" in member(s) {torch.nonzero(bad.reshape(E, -1).any(1)).flatten().tolist()}"
        raise ValueError(f"model {kind} {name!r} has {int(bad.sum())} non-finite (NaN or inf) entries of "
                         f"{t.numel()}{where}; local complexity and linear regions of a non-finite model are "
                         "undefined (did training diverge?)")


def check_radius(radius) -> float:
    """`radius` as a float; ValueError unless it is one positive finite real number."""
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) and not (
            torch.is_tensor(radius) and radius.numel() == 1):
        raise ValueError(f"radius must be a positive finite number; got {radius!r}")
    r = float(radius)
    if not math.isfinite(r) or r <= 0:
        raise ValueError(f"radius must be a positive finite number; got {radius!r}")
    return r


def _linear_part(first: nn.Module, E: int | None):
    """v -> W v (the affine map's linear part) for the shortcut, or None if `first` is not a known affine map."""
    if type(first) is nn.Linear:
        return lambda v: F.linear(v, first.weight)
    if type(first) in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return lambda v: first._conv_forward(v, first.weight, None)
    w, b = getattr(first, "weight", None), getattr(first, "bias", None)
    if E is not None and torch.is_tensor(w) and w.dim() == 3 and w.shape[0] == E and (
            b is None or (torch.is_tensor(b) and tuple(b.shape) == (E, 1, w.shape[2]))):
        return lambda v: torch.matmul(v, w)  # [K, in] -> [E, K, out]
    return None


def _flattened_ndim(m: nn.Module, ndim: int) -> int | None:
    """Dims after `m` if it is an nn.Flatten that keeps dim 0 (the batch) of an ndim-dim input, else None."""
    if type(m) is not nn.Flatten:
        return None
    start, end = m.start_dim % ndim, m.end_dim % ndim
    return ndim - (end - start) if 1 <= start <= end else None


@dataclasses.dataclass(frozen=True)
class _Shortcut:
    """A sequential model as prefix (leading nn.Flatten, linear and per point) -> first (affine) -> rest.

    At a vertex x + r v the first map's output is first(prefix(x)) + r W prefix(v): `first_out` and
    `first_linear` give the two terms, `finish` runs the rest of the model on the sum.
    """

    prefix: tuple[nn.Module, ...]
    first: nn.Module
    linear: Callable[[torch.Tensor], torch.Tensor]
    rest: tuple[nn.Module, ...]

    def _pre(self, v: torch.Tensor) -> torch.Tensor:
        for layer in self.prefix:
            v = layer(v)
        return v

    def first_out(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(self._pre(x))

    def first_linear(self, v: torch.Tensor) -> torch.Tensor:
        return self.linear(self._pre(v))

    def finish(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.rest:
            z = layer(z)
        return z


def _shortcut_plan(model: nn.Module, sites: Sequence[Site], E: int | None, point_ndim: int) -> _Shortcut | None:
    """The shortcut split of a sequential model whose first children are nn.Flatten modules (plain models
    only) followed by an affine map, none of them a site; else None."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        return None
    if E is None and type(model).forward is not nn.Sequential.forward:
        return None  # a subclass with its own forward may not run its children in order
    children, k, ndim = list(model), 0, point_ndim + 1
    while E is None and k < len(children) - 2 and _flattened_ndim(children[k], ndim) is not None:
        ndim = _flattened_ndim(children[k], ndim)
        k += 1
    if any(site.module is m for site in sites for m in [model, *children[:k + 1]]):
        return None  # the shortcut never calls these modules on the vertices
    lin = _linear_part(children[k], E)
    return None if lin is None else _Shortcut(tuple(children[:k]), children[k], lin, tuple(children[k + 1:]))


def _directions(frame, n_dirs, generator, point_shape, N):
    """(shared directions [P, *in] float or None, per-point frames indexable by point slices or None, P)."""
    if not isinstance(frame, str):
        check_frame(frame, point_shape, N, n_dirs)
        if frame.dim() == len(point_shape) + 1:
            return frame, None, frame.shape[0]
        return None, frame, frame.shape[1]
    if frame not in ("shared", "per_point"):
        raise ValueError(f"frame must be 'shared', 'per_point' or a tensor of directions; got {frame!r}")
    if n_dirs is None:
        raise ValueError("n_dirs must be given (an integer in [1, input dimension]) unless frame is a tensor")
    if frame == "shared":
        return orthonormal_frame(point_shape, n_dirs, generator=cpu_generator(generator)), None, n_dirs
    return None, PerPointFrames(point_shape, n_dirs, N, cpu_generator(generator)), n_dirs


def _vertices(center: torch.Tensor, dirs: torch.Tensor, r: float, vdim: int, include_center: bool) -> torch.Tensor:
    """center [..., m, *u] and dirs (P at dim vdim, broadcastable) -> vertices with points x vertices merged.

    Vertex order per point: +r v_1..+r v_P, -r v_1..-r v_P, then the centre if include_center.
    """
    step = torch.cat([dirs, -dirs], dim=vdim) * r
    c = center.unsqueeze(vdim)
    v = c + step
    if include_center:
        shape = list(v.shape)
        shape[vdim] = 1
        v = torch.cat([v, c.expand(shape)], dim=vdim)
    return v.flatten(vdim - 1, vdim)


def _crossed(z: torch.Tensor) -> torch.Tensor:
    """Crossed units per point: z [..., m, n_vert, U] -> int64 [..., m].

    A unit is crossed unless it is > 0 at every vertex, < 0 at every vertex, or exactly 0 at every vertex
    (a pruned unit: zero weights and bias, or a unit fed only by dead units, has no kink there). NaN has
    no strict sign, so it counts as crossed. (amax and amin separately are faster on CPU than aminmax.)
    """
    lo, hi = z.amin(-2), z.amax(-2)
    one_sign = (lo > 0) | (hi < 0) | (lo == hi)  # lo == hi with neither > 0 nor < 0: 0 at every vertex
    return z.shape[-1] - one_sign.sum(-1)


def _by_vertex(z: torch.Tensor, lead: int, m: int, n_vert: int) -> torch.Tensor:
    """[(E,) m * n_vert, ...] -> [(E,) m, n_vert, U]: a site's values grouped by point."""
    return z.reshape(*z.shape[:lead - 1], m, n_vert, -1)


def _check_site_shape(site: Site, z: torch.Tensor, want: tuple[int, ...], lead: int) -> None:
    if tuple(z.shape[:lead]) != want:
        raise ValueError(f"site {site.name!r} ({site.reads}) has shape {tuple(z.shape)}; expected leading dims "
                         f"{want} (sites must keep the batch layout of the model input)")


def _measure_sites(model: nn.Module, x0: torch.Tensor, x_shape, sites: Sequence[Site], E: int | None,
                   include_output: bool, named_by_user: bool):
    """One forward of one centre x0 ([1, *in] or [E, 1, *in]): (the sites forward calls, their units,
    their names), with the output's units and "output" appended if include_output.

    Checks that x fits the model and that every site keeps the batch layout; a site the user named
    (and every output site) must be called.
    """
    lead, want = (1, (1,)) if E is None else (2, (E, 1))
    units: list[int | None] = [None] * len(sites)

    def record(i: int, z: torch.Tensor) -> None:
        _check_site_shape(sites[i], z, want, lead)
        units[i] = (units[i] or 0) + math.prod(z.shape[lead:])

    with capture(sites, record):
        try:
            out = model(x0)
        except (RuntimeError, ValueError, IndexError, TypeError) as err:
            raise ValueError(f"x of shape {tuple(x_shape)} does not fit the model: {err}") from err
    if not torch.is_tensor(out) or tuple(out.shape[:lead]) != want:
        raise ValueError(f"model output for x of shape {tuple(x0.shape)} has shape "
                         f"{tuple(getattr(out, 'shape', ()))}; expected leading dims {want}")
    missing = [s.name for s, u in zip(sites, units) if u is None and (named_by_user or s.reads == "output")]
    if missing:
        raise ValueError(f"sites {missing} are never called in the model's forward")
    kept = [(s, u) for s, u in zip(sites, units) if u is not None]
    if not kept:
        raise NoSitesError(no_sites_message(model) + " (its activation modules are never called in forward)")
    units_out = [math.prod(out.shape[lead:])] if include_output else []
    names_out = ("output",) if include_output else ()
    return [s for s, _ in kept], [u for _, u in kept] + units_out, tuple(s.name for s, _ in kept) + names_out


class _CrossingCounter:
    """Hook callback of the chunk loop: sums each site's crossed units per point over one chunk's forward.

    `start(m)` before the chunk's forward; afterwards `counts[i]` is int64 [(E,) m] for site i (a site
    called k times per forward adds the crossed units of all k calls).
    """

    def __init__(self, sites: Sequence[Site], E: int | None, n_vert: int):
        self.sites, self.E, self.n_vert = sites, E, n_vert
        self.lead = 1 if E is None else 2
        self.start(0)

    def start(self, m: int) -> None:
        self.m, self.counts = m, [0] * len(self.sites)

    def __call__(self, i: int, z: torch.Tensor) -> None:
        rows = self.m * self.n_vert
        _check_site_shape(self.sites[i], z, (rows,) if self.E is None else (self.E, rows), self.lead)
        self.counts[i] = self.counts[i] + _crossed(_by_vertex(z, self.lead, self.m, self.n_vert))


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """model.eval() inside the block; every module's training flag restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, was in modes:
            m.training = was


def _first_layer_vertices(plan: _Shortcut, xc, first_dirs, vc, r: float, lead: int, include_center: bool):
    """The first affine map's output at the vertices of chunk xc: [(E,) m * n_vert, *h].

    first_dirs: W V of the shared frame ([P, *h] or [E, P, H]); vc: per-point directions [m, P, *in] (or None).
    """
    z0 = plan.first_out(xc)  # [m, *h] or [E, m, H]
    if vc is None:
        d = first_dirs.unsqueeze(lead - 1)  # [1, P, *h] or [E, 1, P, H]
    else:
        m, P = vc.shape[:2]
        d = plan.first_linear(vc.flatten(0, 1))
        d = d.reshape(*d.shape[:lead - 1], m, P, *d.shape[lead:])  # [(E,) m, P, *h]
    return _vertices(z0, d, r, lead, include_center)


def _input_vertices(xc, dirs, vc, r: float, per_member: bool, include_center: bool):
    """The vertices of chunk xc [(E,) m, *in] in input space: [(E,) m * n_vert, *in].

    dirs: the shared directions [P, *in]; vc: per-point directions [m, P, *in] (or None).
    """
    d = dirs.unsqueeze(0) if vc is None else vc  # [1 or m, P, *in]
    return _vertices(xc, d.unsqueeze(0) if per_member else d, r, 2 if per_member else 1, include_center)


def _check_arguments(model, x, radius, chunk_size) -> float:
    """Validate the arguments checked before anything runs; returns the radius as a float."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    r = check_radius(radius)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor; got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if torch.is_tensor(x) else ""))
    if not bool(_all_finite(x)):
        raise ValueError("x must be finite; it has NaN or infinite entries")
    check_finite_model(model)
    return r


def _points_and_frame(model: nn.Module, x: torch.Tensor, E: int | None, frame, n_dirs, generator):
    """(x in the model's dtype and device, per_member, point_shape, N, shared directions [P, *in] or None,
    per-point frames or None, P)."""
    per_member, point_shape = point_layout(model, x, E)
    N = x.shape[1] if per_member else x.shape[0]
    if N < 1:
        raise ValueError(f"x must hold at least one point; got shape {tuple(x.shape)}")
    dtype, device = _model_dtype_device(model, x)
    dirs, frames, P = _directions(frame, n_dirs, generator, point_shape, N)
    dirs = None if dirs is None else dirs.to(device, dtype)
    return x.to(device=device, dtype=dtype), per_member, point_shape, N, dirs, frames, P


def _default_chunk(n_vert: int, widths: Sequence[int], device: torch.device) -> int:
    """Points per chunk so that the widest per-vertex tensor of a chunk holds about CHUNK_ELEMENTS elements."""
    return max(1, CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS_OTHER) // (n_vert * max(*widths, 1)))


def local_complexity(model: nn.Module, x: torch.Tensor, *, radius: float, n_dirs: int | None = None,
                     generator: torch.Generator | None = None, frame="shared", include_center: bool = False,
                     sites: SiteSpec = None, include_output: bool = False, chunk_size: int | None = None,
                     shortcut: bool = True, output_sites: Sequence[str] | None = None) -> LCResult:
    """Local complexity around each point of x (Humayun, Balestriero, Baraniuk 2024): per site, the units
    whose pre-activation is not of one strict sign on the vertices x +- r v_p (see `_crossed`).

    model: a module with finite parameters and buffers; one with an integer `n_members` = E (ensemble:
        input [M, *in] or [E, M, *in], output and site tensors [E, M, ...]) gets counts per member.
    x: [N, *in], or for an ensemble [N, *in] (shared by the members) or [E, N, *in] (member e uses x[e]);
        cast to the model's dtype and device.
    radius: r > 0. n_dirs: P, 1 <= P <= prod(in) (None when `frame` is a tensor).
    generator: CPU `torch.Generator` for the directions (None: seeded with `lc.frames.DEFAULT_SEED`);
        the global RNG is never used.
    frame: "shared" (one frame for all points), "per_point" (one per point, shared by the members), or
        orthonormal directions [P, *in] or [N, P, *in] (same vertices for two models; `orthonormal_frame`).
    include_center: also use x itself as a vertex.
    sites: None (inputs of every nn.ReLU, nn.LeakyReLU, nn.PReLU and `lc.PiecewiseLinear` module that
        forward calls), module names, or a filter f(name, module) -> bool. A module called k times per
        forward counts the units of all k calls.
    output_sites: names of modules whose OUTPUT enters an activation applied as a function in forward
        (`F.relu(self.fc1(x))`: "fc1"), counted as sites named like the module, besides `sites`. Naming a
        module whose output also enters an activation module would count its units twice.
    include_output: also count the model output's units (the paper's code counts the output layer).
    chunk_size: points per chunk (None: about 2**17 elements on a CPU, 2**20 elsewhere, in a chunk's widest
        per-vertex tensor).
    shortcut: run an affine first child (after leading nn.Flatten) once on the frame; False: plain path.

    Returns an `LCResult` (counts int64 [N, S] or [E, N, S]). Runs in eval mode under `torch.no_grad()`,
    restoring each module's mode. Raises `NoSitesError` (a ValueError) for a model without sites and
    ValueError for bad arguments or a model with NaN or infinite parameters or buffers.
    """
    r = _check_arguments(model, x, radius, chunk_size)
    E = ensemble_size(model)
    x, per_member, point_shape, N, dirs, frames, P = _points_and_frame(model, x, E, frame, n_dirs, generator)
    n_vert, lead = 2 * P + int(include_center), 1 if E is None else 2
    all_sites = resolve_sites(model, sites, output_sites)
    with _eval_mode(model), torch.no_grad():
        x0 = x[:, :1] if per_member else x[:1]  # one centre through the model: x fits, units per site
        kept, units, names = _measure_sites(model, x0, x.shape, all_sites, E, include_output, sites is not None)
        plan = _shortcut_plan(model, kept, E, len(point_shape)) if shortcut else None
        first_dirs = plan.first_linear(dirs) if plan is not None and dirs is not None else None  # W V
        widest = [*units, math.prod(point_shape) if plan is None else 0]
        m_chunk = chunk_size or _default_chunk(n_vert, widest, x.device)
        counter, counts = _CrossingCounter(kept, E, n_vert), []
        with capture(kept, counter):
            for s in range(0, N, m_chunk):
                m = min(m_chunk, N - s)
                xc = x[:, s:s + m] if per_member else x[s:s + m]  # [(E,) m, *in]
                vc = None if frames is None else frames[s:s + m].to(x.device, x.dtype)  # per-point [m, P, *in]
                counter.start(m)
                if plan is None:  # forward every vertex [(E,) m * n_vert, *in]
                    out = model(_input_vertices(xc, dirs, vc, r, per_member, include_center))
                else:  # the first affine map's output at the vertices, then the rest of the model
                    out = plan.finish(_first_layer_vertices(plan, xc, first_dirs, vc, r, lead, include_center))
                assert all(torch.is_tensor(c) for c in counter.counts), "a site was not called on the vertices"
                per_site = counter.counts + ([_crossed(_by_vertex(out, lead, m, n_vert))] if include_output else [])
                counts.append(torch.stack(per_site, dim=-1).cpu())
    return LCResult(counts=torch.cat(counts, dim=-2).long(), units=torch.tensor(units, dtype=torch.long),
                    site_names=names, radius=r, n_dirs=P, include_center=include_center)
