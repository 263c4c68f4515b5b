"""Local complexity (LC): how many units of a piecewise-linear network change sign around a point.

Humayun, Balestriero, Baraniuk 2024, "Deep networks always grok and here is why" (section 3 and their
code): the neighbourhood of x is the cross-polytope with the 2P vertices x +- r v_p for P orthonormal
directions v_p; a unit of a layer is *crossed* when its pre-activation is neither strictly positive at
every vertex nor strictly negative at every vertex, i.e. when one of the layer's (bent) hyperplanes meets
the neighbourhood. The LC of x is the number of crossed units summed over layers; a point set is
summarised by its mean. For one hidden layer the count is exact: unit j is crossed iff
|w_j.x + b_j| <= r max_p |w_j.v_p| (the hyperplane meets the cross-polytope).

Two evaluation paths give the same counts:

- plain: forward the 2P (+1) vertices of a chunk of points through the model, hooks read each site;
- shortcut (default where it applies): when the model is an `nn.Sequential` whose first child is an affine
  map of the input (nn.Linear, nn.Conv1d/2d/3d, or an ensemble linear layer with weight [E, in, out]), its
  output at the vertices is (W x + b) +- r (W v_p), with W V computed once per call for a shared frame;
  the rest of the model runs on those values. This skips the widest matmul (the input layer) on 2P vertices.
  The two paths round differently, so in float32 a pre-activation within rounding of 0 at some vertex may
  flip a count between them; in float64 they agree (tests check equality in float64).

Memory is bounded by chunking over points: one chunk's vertex activations, not N x 2P of them, are alive
at a time, and counts are reduced inside the hooks.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .frames import PerPointFrames, _generator, check_frame, orthonormal_frame
from .sites import NoSitesError, SiteSpec, capture, find_sites, no_sites_message

__all__ = ["LCResult", "local_complexity", "ensemble_size"]

# Default chunk: about this many elements in the widest per-vertex tensor of one chunk (8 MiB in float64).
CHUNK_ELEMENTS = 2**20


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


def _layout(model: nn.Module, x: torch.Tensor, E: int | None) -> tuple[bool, tuple[int, ...]]:
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


def _check_radius(radius) -> float:
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


def _shortcut_plan(model: nn.Module, site_modules: Sequence[nn.Module], E: int | None):
    """(first, linear_part, rest) when the first child of a sequential model is an affine map, else None."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        return None
    if E is None and type(model).forward is not nn.Sequential.forward:
        return None  # a subclass with its own forward may not run its children in order
    first = model[0]
    if any(first is m for m in site_modules):
        return None
    lin = _linear_part(first, E)
    return None if lin is None else (first, lin, list(model)[1:])


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
        return orthonormal_frame(point_shape, n_dirs, generator=_generator(generator)), None, n_dirs
    return None, PerPointFrames(point_shape, n_dirs, N, _generator(generator)), n_dirs


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

    A unit is crossed unless it is > 0 at every vertex or < 0 at every vertex; NaN has no strict sign,
    so it counts as crossed. (amax and amin separately are faster on CPU than one aminmax here.)
    """
    lo, hi = z.amin(-2), z.amax(-2)
    return (~((lo > 0) | (hi < 0))).sum(-1)


def local_complexity(model: nn.Module, x: torch.Tensor, *, radius: float, n_dirs: int | None = None,
                     generator: torch.Generator | None = None, frame="shared", include_center: bool = False,
                     sites: SiteSpec = None, include_output: bool = False, chunk_size: int | None = None,
                     shortcut: bool = True) -> LCResult:
    """Local complexity of `model` around each point of `x` (Humayun, Balestriero, Baraniuk 2024).

    model: a module. One with an integer `n_members` = E (an ensemble: input [M, *in] or [E, M, *in],
        output [E, M, out], site inputs [E, M, ...]) gets counts per member.
    x: [N, *in], or for an ensemble [N, *in] (the same points for every member) or [E, N, *in] (member e
        uses x[e]). Cast to the model's dtype and device.
    radius: r > 0, the cross-polytope has vertices x +- r v_p.
    n_dirs: P, 1 <= P <= prod(in). May be None when `frame` is a tensor.
    generator: CPU `torch.Generator` for the directions; None uses a fresh one seeded with
        `lc.frames.DEFAULT_SEED` (0). The global RNG is never used.
    frame: "shared" (one frame for all points), "per_point" (one per point, shared by the members for
        point i), or a tensor of directions [P, *in] or [N, P, *in] with orthonormal rows (to compare two
        models or checkpoints on the same vertices; see `orthonormal_frame`).
    include_center: also use x itself as a vertex.
    sites: None (inputs of every nn.ReLU, nn.LeakyReLU, nn.PReLU and `lc.PiecewiseLinear` module),
        module names, or a filter f(name, module) -> bool. A module called k times per forward counts
        the units of all k calls. Default sites never called in forward are left out.
    include_output: also count the model output's units (the paper's code counts the output layer).
    chunk_size: points per chunk; None picks one so that the widest per-vertex tensor of a chunk holds
        about 1M (2**20) elements.
    shortcut: evaluate an affine first child on the frame once (see the module docstring); False forces
        the plain path.

    The model is evaluated in eval mode under `torch.no_grad()`; each module's mode is restored after.
    Raises `NoSitesError` (a ValueError) when the model has no site, ValueError for bad arguments.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    r = _check_radius(radius)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor; got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if torch.is_tensor(x) else ""))
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite; it has NaN or infinite entries")
    E = ensemble_size(model)
    per_member, point_shape = _layout(model, x, E)
    N = x.shape[1] if per_member else x.shape[0]
    if N < 1:
        raise ValueError(f"x must hold at least one point; got shape {tuple(x.shape)}")
    dtype, device = _model_dtype_device(model, x)
    x = x.to(device=device, dtype=dtype)

    dirs, frames, P = _directions(frame, n_dirs, generator, point_shape, N)
    if dirs is not None:
        dirs = dirs.to(device, dtype)
    n_vert = 2 * P + int(include_center)

    named = find_sites(model, sites)
    modules = [m for _, m in named]
    lead = 1 if E is None else 2  # leading (member,) point dims of every site input and of the output
    state: dict = {}

    def on_site(i: int, z: torch.Tensor) -> None:
        m, nv = state["m"], state["n_vert"]
        want = (m * nv,) if E is None else (E, m * nv)
        if tuple(z.shape[:lead]) != want:
            raise ValueError(f"site {named[i][0]!r} input has shape {tuple(z.shape)}; expected leading dims {want} "
                             "(sites must keep the batch layout of the model input)")
        if state["units"] is not None:
            state["units"][i] += math.prod(z.shape[lead:])
            state["fired"][i] = True
            return
        state["acc"][i] = state["acc"][i] + _crossed(z.reshape(*want[:-1], m, nv, -1))

    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad(), capture(modules, on_site):
            # one centre through the model: checks that x fits, counts units per site
            state.update(m=1, n_vert=1, units=[0] * len(named), fired=[False] * len(named))
            x0 = x[:, :1] if per_member else x[:1]
            try:
                out0 = model(x0)
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model: {err}") from err
            want = (1,) if E is None else (E, 1)
            if not torch.is_tensor(out0) or tuple(out0.shape[:lead]) != want:
                raise ValueError(f"model output for x of shape {tuple(x0.shape)} has shape "
                                 f"{tuple(getattr(out0, 'shape', ()))}; expected leading dims {want}")
            keep = [i for i, f in enumerate(state["fired"]) if f]
            if sites is not None and len(keep) < len(named):
                raise ValueError(f"sites {[named[i][0] for i in range(len(named)) if i not in keep]} are never "
                                 "called in the model's forward")
            if not keep:
                raise NoSitesError(no_sites_message(model) + " (its activation modules are never called in forward)")
            units = [state["units"][i] for i in keep] + ([math.prod(out0.shape[lead:])] if include_output else [])
            names = tuple(named[i][0] for i in keep) + (("output",) if include_output else ())
            state["units"] = None

            plan = _shortcut_plan(model, modules, E) if shortcut else None
            D = math.prod(point_shape)
            first_width = D if plan is None else 0
            m_chunk = chunk_size or max(1, CHUNK_ELEMENTS // (n_vert * max(first_width, max(units), 1)))
            if plan is not None and dirs is not None:
                first_lin = plan[1](dirs.reshape(P, *point_shape))  # [P, *h] or [E, P, H]
            counts = []
            for s in range(0, N, m_chunk):
                m = min(m_chunk, N - s)
                xc = x[:, s:s + m] if per_member else x[s:s + m]
                if dirs is None:
                    vc = frames[s:s + m].to(device, dtype)  # [m, P, *in]
                state.update(m=m, n_vert=n_vert, acc=[0] * len(named))
                if plan is None:  # forward the vertices [(E,) m * n_vert, *in]
                    d = dirs.unsqueeze(0) if dirs is not None else vc  # [1 or m, P, *in]
                    vdim = 2 if per_member else 1
                    out = model(_vertices(xc, d.unsqueeze(0) if per_member else d, r, vdim, include_center))
                else:  # the first child's outputs at the vertices, then the rest of the model
                    first, lin, rest = plan
                    z0 = first(xc)  # [m, *h] or [E, m, H]
                    if dirs is not None:
                        d = first_lin.unsqueeze(lead - 1)  # [1, P, *h] or [E, 1, P, H]
                    else:
                        d = lin(vc.reshape(m * P, *point_shape))
                        d = d.reshape(*d.shape[:lead - 1], m, P, *d.shape[lead:])  # [(E,) m, P, *h]
                    out = _vertices(z0, d, r, lead, include_center)
                    for layer in rest:
                        out = layer(out)
                per_site = [state["acc"][i] for i in keep]
                if include_output:
                    per_site.append(_crossed(out.reshape(*out.shape[:lead - 1], m, n_vert, -1)))
                counts.append(torch.stack(per_site, dim=-1).cpu())
    finally:
        for mod, was in modes:
            mod.training = was
    return LCResult(counts=torch.cat(counts, dim=-2).long(), units=torch.tensor(units, dtype=torch.long),
                    site_names=names, radius=r, n_dirs=P, include_center=include_center)
