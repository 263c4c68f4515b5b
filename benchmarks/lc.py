"""Local-complexity speed and memory against a plain reference, and exact 2-D partition times.

(a) The paper's MLP (784-200-200-200-10, ReLU, float64 as in Humayun et al.'s MNIST runs), N = 1000 points
    uniform in [0, 1]^784 (MNIST's pixel range; no dataset needed), P = 25 directions, r = 0.5, output layer
    counted (as in the paper's code), in two forms: flat input [N, 784], and the image MLP
    nn.Sequential(nn.Flatten(), nn.Linear(784, 200), ...) on images [N, 1, 28, 28] (the frame drawn in the
    image shape; lc's first-layer shortcut goes through the Flatten). The reference is the paper-style
    estimator written here: all N x 2P vertices forwarded at once, every Linear output hooked and kept, a
    unit counts when its sign at some vertex differs from its sign at vertex 0. `lc.local_complexity` runs
    on the same vertices (same frame) and must give identical counts. Time: the minimum over interleaved repeats (the machine may be shared).
    Peak memory: each method runs once in a fresh subprocess; the number is the rise of the process's peak
    resident set size (VmHWM, reset to the current RSS just before the call through /proc/self/clear_refs)
    above its RSS before the call, i.e. everything the call allocated at its peak, torch buffers included.
    The subprocess runs with MALLOC_MMAP_THRESHOLD_=65536 so that glibc returns freed tensors to the OS
    and RSS tracks live memory instead of heap fragmentation (the reference is measured the same way).
    Targets: lc >= 1.5x faster than the reference on the flat MLP and >= 4x on the image MLP; its peak
    rise <= one chunk's activations (the chunk's vertex inputs if forwarded, plus every layer's output for
    its vertices, summed) plus the parameters. The machine's load average is printed: on a shared 2-core
    machine, 2-thread timings of many small ops suffer from OpenMP barrier stalls, so the default is one
    thread (`--threads 2` for two).
(b) `lc.exact2d.partition` of default-init 2-64-64-1 and 2-256-256-256-1 ReLU MLPs (torch.manual_seed(0)) on
    [-1, 1]^2: time and region count. Targets on 2 CPU cores: < 0.2 s and < 20 s (about 80,000 regions).

Run: python benchmarks/lc.py [--threads 1] [--repeats 5] [--dtype float64|float32] [--json PATH]
(--dtype float32: model and points in float32, the dtype the image settings train in; target >= 4x on the
image MLP as well.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# this file is named lc.py: drop its folder from the path so `import lc` finds the package, not this script
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import lc  # noqa: E402
from lc import exact2d  # noqa: E402
from lc.complexity import _default_chunk  # noqa: E402

N, P, R, D, WIDTHS = 1000, 25, 0.5, 784, (200, 200, 200, 10)
SHAPES = {"flat": (D,), "image": (1, 28, 28)}  # input shape of each form of the MLP
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DTYPE = torch.float64  # --dtype: the model's and the points' dtype (float32: the image settings' training dtype)


def paper_mlp(form: str = "flat") -> nn.Sequential:
    torch.manual_seed(0)
    sizes = (D, *WIDTHS)
    layers: list[nn.Module] = [nn.Flatten()] if form == "image" else []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(WIDTHS) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double()


def problem(form: str = "flat"):
    """(model, x [N, *shape], frame [P, *shape]): the same weights, points and directions in both forms."""
    shape = SHAPES[form]
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64).reshape(N, *shape)
    frame = lc.orthonormal_frame(shape, P, generator=torch.Generator().manual_seed(2))
    return paper_mlp(form).to(DTYPE), x.to(DTYPE), frame


def reference(model: nn.Sequential, x: torch.Tensor, frame: torch.Tensor, r: float) -> torch.Tensor:
    """Paper-style LC: forward all 2P vertices of every point, hook every layer, compare signs with vertex 0."""
    frame = frame.to(x.dtype)
    verts = (x[:, None] + r * torch.cat([frame, -frame])[None]).reshape(-1, *x.shape[1:])  # [N * 2P, *in]
    acts: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: acts.append(out.detach()))
               for m in model if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            model(verts)
    finally:
        for h in handles:
            h.remove()
    counts = []
    for z in acts:
        s = torch.sign(z.reshape(x.shape[0], 2 * frame.shape[0], -1))  # [N, 2P, H]
        counts.append((s != s[:, :1]).any(1).sum(-1))
    return torch.stack(counts, dim=-1)  # [N, layers]


def run_method(name: str, model, x, frame) -> torch.Tensor:
    if name == "reference":
        return reference(model, x, frame, R)
    return lc.local_complexity(model, x, radius=R, frame=frame, include_output=True,
                               shortcut=name == "lc").counts


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(name: str, form: str, threads: int) -> None:
    """In a fresh process: peak RSS rise of one call of `name` on the `form` MLP, printed as JSON."""
    torch.set_num_threads(threads)
    model, x, frame = problem(form)
    run_method(name, model, x[:2], frame)  # load kernels and thread pools outside the measurement
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    before = _status("VmRSS")
    run_method(name, model, x, frame)
    print(json.dumps(dict(peak_rise=_status("VmHWM") - before)))


def peak_rise(name: str, form: str, threads: int) -> int:
    out = subprocess.run([sys.executable, __file__, "--memory-of", name, "--form", form, "--threads", str(threads),
                          "--dtype", str(DTYPE).removeprefix("torch.")],
                         check=True, capture_output=True, text=True,
                         env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(threads)))
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rise"]


def chunk_bound(model, plain: bool) -> tuple[int, int]:
    """(points per default chunk, bytes of one chunk's activations + parameters) as lc chooses the chunk."""
    chunk = _default_chunk(2 * P, [*WIDTHS, D if plain else 0], torch.device("cpu"))
    per_vertex = (D if plain else 0) + sum(WIDTHS) + sum(WIDTHS[:-1])  # inputs, Linear and ReLU outputs
    size = DTYPE.itemsize
    return chunk, chunk * 2 * P * per_vertex * size + sum(p.numel() * size for p in model.parameters())


def part_a(form: str, repeats: int, threads: int) -> dict:
    model, x, frame = problem(form)
    ref = reference(model, x, frame, R)
    names = ("reference", "lc", "lc-plain")
    results = {n: run_method(n, model, x, frame) for n in names}
    identical = {n: bool(torch.equal(results[n], ref)) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):  # interleaved, so a busy moment of a shared machine hits every method
        for n in names:
            t0 = time.perf_counter()
            run_method(n, model, x, frame)
            times[n].append(time.perf_counter() - t0)
    bounds = {"lc": chunk_bound(model, False), "lc-plain": chunk_bound(model, True)}
    mem = {n: peak_rise(n, form, threads) for n in names}
    return dict(form=form, shape=SHAPES[form], N=N, P=P, r=R, identical=identical, times=times,
                best={n: min(t) for n, t in times.items()}, peak_rise=mem, bounds=bounds,
                mean_lc=float(ref.sum(-1).double().mean()))


def mlp(sizes) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def part_b() -> list[dict]:
    rows = []
    exact2d.partition(mlp((2, 8, 1)), np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))  # warm-up
    for sizes, reps, target in (((2, 64, 64, 1), 5, 0.2), ((2, 256, 256, 256, 1), 2, 20.0)):
        model, ts = mlp(sizes), []
        for _ in range(reps):
            t0 = time.perf_counter()
            part = exact2d.partition(model, np.zeros(2), np.eye(2), bounds=((-1, 1), (-1, 1)))
            ts.append(time.perf_counter() - t0)
        rows.append(dict(sizes="-".join(map(str, sizes)), regions=part.count, seconds=min(ts), target_s=target,
                         tiling_error=abs(part.areas.sum() - 4.0) / 4.0))
    return rows


TARGETS = {"flat": 1.5, "image": 4.0}  # lc's speedup over the reference


def print_a(a: dict) -> None:
    mb = 2.0**20
    shape = "x".join(map(str, a["shape"]))
    print(f"(a) LC of 784-200-200-200-10 ReLU MLP ({str(DTYPE).removeprefix('torch.')}), {a['form']} input [{shape}], N={a['N']}, P={a['P']}, "
          f"r={a['r']}, output counted; mean LC {a['mean_lc']:.2f}")
    print(f"{'method':<38}{'best s':>8}{'median s':>10}{'speedup':>9}{'(median)':>9}{'peak rise MiB':>15}"
          f"{'bound MiB':>11}{'same counts':>13}")
    ref_t, ref_m = a["best"]["reference"], float(np.median(a["times"]["reference"]))
    labels = {"reference": "reference (all vertices, all layers)", "lc": "lc.local_complexity",
              "lc-plain": "lc.local_complexity shortcut=False"}
    for n in ("reference", "lc", "lc-plain"):
        med = float(np.median(a["times"][n]))
        print(f"{labels[n]:<38}{a['best'][n]:>8.2f}{med:>10.2f}{ref_t / a['best'][n]:>8.1f}x{ref_m / med:>8.1f}x"
              f"{a['peak_rise'][n] / mb:>15.1f}"
              f"{a['bounds'][n][1] / mb if n in a['bounds'] else float('nan'):>11.1f}{str(a['identical'][n]):>13}")
    print(f"    targets: lc >= {TARGETS[a['form']]}x faster than the reference; peak rise <= bound = one default "
          f"chunk ({a['bounds']['lc'][0]} points x {2 * a['P']} vertices; {a['bounds']['lc-plain'][0]} on the plain "
          "path), every layer's output summed, + parameters")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json")
    p.add_argument("--dtype", choices=list(DTYPES), default="float64")
    p.add_argument("--memory-of", choices=["reference", "lc", "lc-plain"], help=argparse.SUPPRESS)
    p.add_argument("--form", choices=list(SHAPES), default="flat", help=argparse.SUPPRESS)
    args = p.parse_args()
    global DTYPE
    DTYPE = DTYPES[args.dtype]
    if args.memory_of:
        memory_child(args.memory_of, args.form, args.threads)
        return
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    parts = [part_a(form, args.repeats, args.threads) for form in SHAPES]
    b = part_b()
    print(f"CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cores visible, torch {torch.__version__}, "
          f"load average (1, 5, 15 min) {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end")
    for a in parts:
        print_a(a)
    print("(b) exact2d on [-1, 1]^2, default PyTorch init (seed 0)")
    print(f"{'MLP':<20}{'regions':>9}{'seconds':>10}{'target s':>10}{'tiling err':>12}")
    for row in b:
        print(f"{row['sizes']:<20}{row['regions']:>9}{row['seconds']:>10.3f}{row['target_s']:>10.1f}"
              f"{row['tiling_error']:>12.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(a=parts, b=b, load_start=load, load_end=os.getloadavg()), indent=2))


if __name__ == "__main__":
    main()
