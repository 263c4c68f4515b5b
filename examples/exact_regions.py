"""Exact linear regions of one's own ReLU net on a 2-D slice (`lc.exact2d.partition`).

A small MLP on 2-D inputs is cut into its exact linear regions on [-1, 1]^2; each region carries the affine map
the net computes there, checked here against the net itself at each region's centroid. The regions and the
decision boundary are drawn with `lc.plot.plot_partition` into --out (a temporary directory by default).

    python examples/exact_regions.py [--width 32 --out DIR]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lc


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--out", type=Path, default=None, help="directory for the figure (default: a temporary one)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="exact-regions-"))
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, args.width), nn.ReLU(), nn.Linear(args.width, args.width), nn.ReLU(),
                        nn.Linear(args.width, 1)).double()
    with torch.no_grad():  # shift the output so that its zero set (the decision boundary) passes the origin
        net[-1].bias -= net(torch.zeros(1, 2, dtype=torch.float64))[0]

    part = lc.exact2d.partition(net, origin=np.zeros(2), basis=np.eye(2), bounds=((-1, 1), (-1, 1)))
    print(f"{part.count} regions on [-1, 1]^2, total area {part.areas.sum():.6f} (the square: 4)")
    centroids = np.array([poly.mean(axis=0) for poly in part.polygons])  # [R, 2], inside each convex region
    exact = part.output(centroids, np.arange(part.count))  # [R, 1] from the regions' affine maps
    with torch.no_grad():
        direct = net(torch.from_numpy(centroids)).numpy()
    print(f"max |affine map - net| at the centroids: {np.abs(exact - direct).max():.2e}")
    print(f"decision boundary: {len(part.boundary)} segments")
    lc.plot.plot_partition(part, out / "regions.png", title=f"2-{args.width}-{args.width}-1 ReLU net")
    print(f"figure: {out / 'regions.png'}")


if __name__ == "__main__":
    main()
