"""Exact 2-D linear regions: `lc.exact2d.partition` against regioncam (Rust) in the same run.

Default-init ReLU MLPs (torch.manual_seed(0)) 2-64-64-1, 2-32-32-32-1 and 2-256-256-256-1 on [-1, 1]^2. regioncam
takes float32 weights, so the weights are rounded to float32 first and both tools get the same numbers
(`lc.exact2d` computes in float64 from them). `lc.exact2d` runs with tol=0 and min_area=0 (no merging of
near-coincident lines, no dropped slivers), as regioncam keeps every face; the region counts must be equal.
Times: medians (and minima) of interleaved repeats, one thread for both (BLAS limited to one thread through
threadpoolctl; regioncam is single-threaded). Targets: lc.exact2d at least as fast as regioncam (ratio >= 1)
on the two small nets, and faster on 2-256-256-256-1.

regioncam is an optional benchmark dependency (`pip install regioncam`); without it, only lc.exact2d is timed
and the script says so.

Run: python benchmarks/exact2d.py [--repeats 9] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import sys

# this folder holds lc.py: drop it from the path so `import lc` finds the package, not that script
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from torch import nn  # noqa: E402

from lc import exact2d  # noqa: E402

NETS = ((2, 64, 64, 1), (2, 32, 32, 32, 1), (2, 256, 256, 256, 1))
BOUNDS = ((-1.0, 1.0), (-1.0, 1.0))


def mlp(sizes) -> nn.Sequential:
    """Default-init ReLU MLP, seed 0, weights rounded to float32 (regioncam's precision), held in float64."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).float().double()


def ours(model) -> int:
    return exact2d.partition(model, np.zeros(2), np.eye(2), bounds=BOUNDS, tol=0.0, min_area=0.0).count


def theirs(model) -> int:
    import regioncam

    rc = regioncam.Regioncam(size=1.0)  # the square [-1, 1]^2
    for m in model:
        if isinstance(m, nn.Linear):  # regioncam computes x @ weight + bias
            rc.linear(m.weight.detach().float().numpy().T.copy(), m.bias.detach().float().numpy().copy())
        else:
            rc.relu()
    return rc.num_faces


def regioncam_version() -> str | None:
    try:
        import regioncam
    except ImportError:
        return None
    return getattr(regioncam, "__version__", "?")


def bench(sizes, repeats: int, with_rc: bool) -> dict:
    model = mlp(sizes)
    fns = {"lc.exact2d": ours} | ({"regioncam": theirs} if with_rc else {})
    counts = {k: f(model) for k, f in fns.items()}  # warm-up, and the counts
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved: a busy moment of a shared machine hits both
        for k, f in fns.items():
            t0 = time.perf_counter()
            f(model)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(t)) for k, t in times.items()}
    row = dict(net="-".join(map(str, sizes)), counts=counts, times=times, median=med,
               best={k: min(t) for k, t in times.items()})
    if with_rc:
        row["same_count"] = counts["lc.exact2d"] == counts["regioncam"]
        row["ratio_median"] = med["regioncam"] / med["lc.exact2d"]
        row["ratio_best"] = row["best"]["regioncam"] / row["best"]["lc.exact2d"]
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=9, help="interleaved repeats on the small nets (2 on the large)")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(1)
    version = regioncam_version()
    if version is None:
        print("regioncam is not installed (`pip install regioncam`, an optional benchmark dependency): "
              "timing lc.exact2d alone, no ratios")
    load = os.getloadavg()
    with threadpool_limits(1, user_api="blas"):
        rows = [bench(s, args.repeats if max(s) < 256 else 2, version is not None) for s in NETS]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, 1 thread, numpy {np.__version__}, "
          f"regioncam {version or '-'}; load average (1 min) {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"{'MLP':<18}{'regions lc':>11}{'regioncam':>10}{'same':>6}{'lc s (median, best)':>22}"
          f"{'regioncam s':>18}{'ratio median':>14}{'ratio best':>12}")
    for r in rows:
        rc = r["counts"].get("regioncam", "-")
        rc_t = f"{r['median']['regioncam']:.4f}, {r['best']['regioncam']:.4f}" if version else "-"
        print(f"{r['net']:<18}{r['counts']['lc.exact2d']:>11}{rc:>10}{str(r.get('same_count', '-')):>6}"
              f"{r['median']['lc.exact2d']:>12.4f}, {r['best']['lc.exact2d']:.4f}{rc_t:>18}"
              f"{r.get('ratio_median', float('nan')):>13.2f}x{r.get('ratio_best', float('nan')):>11.2f}x")
    print("ratio = regioncam's time / lc.exact2d's (> 1: lc.exact2d faster); target >= 1 on every net")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=rows, load_start=load, load_end=os.getloadavg(),
                                                   regioncam=version, cpus=os.cpu_count()), indent=2))


if __name__ == "__main__":
    main()
