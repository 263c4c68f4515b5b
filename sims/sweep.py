"""Sweeps: a grid of config overrides, folded into ensembles where possible, run locally or on Dask.

`expand_grid({"lr": [0.1, 1.0], "width": [100, 200]})` gives the 4 override dicts. Points that differ
only in `seed` (consecutive values) are one ensemble run with several members: seeds never cost
separate processes. Runs execute one after another (`workers=0`), on a Dask `LocalCluster` bound to
127.0.0.1 (`workers=N`), or on an existing Dask scheduler (`scheduler="tcp://host:8786"`). Each run is an
ordinary run directory; `sweep.json` in the sweep directory indexes them.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import api, registry, store
from .config import ConfigError

__all__ = ["expand_grid", "plan", "sweep", "parse_grid"]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """['lr=0.1,1', 'width=100,200'] -> {'lr': ['0.1', '1'], 'width': ['100', '200']}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,...; got {item!r}")
        k, vals = item.split("=", 1)
        values = [v.strip() for v in vals.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {k}= has no values")
        grid[k.strip()] = values
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of the grid, in key order, as a list of override dicts."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def plan(name: str, grid: Mapping[str, Sequence[Any]], *, preset: str = "default", seeds: int = 1,
         base: Mapping[str, Any] | None = None) -> list[dict]:
    """Validated run specs [{'overrides': {...}, 'seeds': k}] for the grid, seeds folded into members.

    Every point is validated (unknown key, bad value: ConfigError) before anything runs.
    """
    sim = registry.get(name)
    base = dict(base or {})
    grid = dict(grid)
    seed_values = grid.pop("seed", None)
    if seed_values is not None and seeds != 1:
        raise ConfigError("give seeds either as a grid over 'seed' or as --seeds K, not both")
    specs = []
    for point in expand_grid(grid) if grid else [{}]:
        over = {**base, **point}
        if seed_values is None:
            registry.resolve(sim, preset, over)
            specs.append(dict(overrides=over, seeds=seeds))
            continue
        ints = sorted({int(registry.resolve(sim, preset, {**over, "seed": s}).seed) for s in seed_values})
        consecutive = ints == list(range(ints[0], ints[0] + len(ints)))
        for group in [ints] if consecutive else [[s] for s in ints]:  # consecutive seeds: one ensemble
            specs.append(dict(overrides={**over, "seed": group[0]}, seeds=len(group)))
    return specs


def _run_one(name: str, preset: str, spec: dict, out: str, device: str) -> dict:
    try:
        r = api.run(name, preset=preset, seeds=spec["seeds"], device=device, out=out, quiet=True,
                    **spec["overrides"])
        return dict(spec, dir=str(r.dir), status=r.summary["status"])
    except Exception as exc:  # a failed point is recorded, the sweep goes on
        return dict(spec, dir=None, status="failed", error=f"{type(exc).__name__}: {exc}")


def sweep(name: str, grid: Mapping[str, Sequence[Any]], *, preset: str = "default", seeds: int = 1,
          base: Mapping[str, Any] | None = None, out: str | Path | None = None, device: str = "auto",
          workers: int = 0, scheduler: str | None = None) -> dict:
    """Run the grid; returns the index written to <out>/sweep.json (points with run dirs and status)."""
    specs = plan(name, grid, preset=preset, seeds=seeds, base=base)
    root = Path(out) if out is not None else api.default_root() / "sweeps" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
    runs_root = str(root / "runs")
    t0 = time.time()
    if scheduler is None and workers == 0:
        results = [_run_one(name, preset, s, runs_root, device) for s in specs]
        where = "local, sequential"
    else:
        results, where = _run_dask(name, preset, specs, runs_root, device, workers, scheduler)
    index = dict(sim=name, preset=preset, grid={k: list(v) for k, v in grid.items()}, base=dict(base or {}),
                 executor=where, elapsed_s=round(time.time() - t0, 2), points=results)
    store.write_json(root / "sweep.json", index)
    index["dir"] = str(root)
    return index


def _run_dask(name, preset, specs, runs_root, device, workers, scheduler):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError("Dask sweeps need the 'dask' extra: pip install 'implicit-bias-lab[dask]'") from exc
    if scheduler is not None:
        with Client(scheduler) as client:
            futures = [client.submit(_run_one, name, preset, s, runs_root, device, pure=False) for s in specs]
            return client.gather(futures), f"dask scheduler {scheduler}"
    n = max(1, workers)
    with LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster, Client(cluster) as client:
        futures = [client.submit(_run_one, name, preset, s, runs_root, device, pure=False) for s in specs]
        return client.gather(futures), f"dask LocalCluster on 127.0.0.1, {n} workers"
