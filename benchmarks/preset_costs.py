"""What each setting's `paper` preset costs on this CPU: time per step (or per grid point) measured at full size.

For every registered setting, in a fresh subprocess (a hard time limit per setting): the preset's members (one
seed) are checked against `sims.memory` (the setting's `memory=` estimate against the free memory); the task is
built as `sims run` builds it (baselines included, timed as `build_s`); then for a trained setting the engine's
own training step (`sims.engine._train_step`, full batch or the preset's mini-batches) runs a few times to warm
up and then for about `--budget` seconds (at most `--max-steps` steps), at the thread count a run would choose
(`sims.threads.choose_threads`); one evaluation (metrics and LC probe) is timed when the budget allows. FLOPs per
step are counted by `torch.utils.flop_counter.FlopCounterMode` over one forward, loss and backward on the step's
batch: the matmul and convolution FLOPs from the tensor shapes (the optimiser's elementwise update excluded), so
a GPU user can divide by their device's throughput. The estimate is
    total = build_s + steps x step_s + n_evals x eval_s.
A grid setting evaluates its points in order for up to the budget: all of them gives the measured total, fewer
gives a lower bound extrapolated from the mean time per point so far (later points are usually larger).
MNIST presets run on a synthetic `mnist.npz` of MNIST's shapes (random pixels; the time per step is the same).

Writes sims/costs.json (read by `sims show NAME --preset paper`) and prints a markdown table for
benchmarks/README.md. Run: python benchmarks/preset_costs.py [--budget 20] [--only NAME ...] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COSTS = ROOT / "sims" / "costs.json"
PRESET = "paper"
# Measured at a smaller size when asked (--shrink NAME): the overrides and the factor by which time per step, time
# per evaluation and FLOPs are scaled back to the paper size (the diagonal net's step is linear in d: X [n, d]).
SHRINK = {"dichotomy-sparse": ({"d": 10000}, 10.0), "dichotomy-misgrokking": ({"d": 10000}, 10.0)}


def _mnist_npz(folder: Path) -> Path:
    """A synthetic mnist.npz (Keras layout, MNIST's shapes, random pixels and labels) in `folder`."""
    import numpy as np

    rng = np.random.default_rng(0)
    path = folder / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 60000, dtype=np.uint8),
             x_test=rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, 10000, dtype=np.uint8))
    return path


def _members(sim, data: Path | None, shrink: dict):
    """The paper preset's members (one seed), reading MNIST from `data` when given, with the `shrink` overrides."""
    from sims import registry

    over = {"data_dir": str(data)} if data is not None else {}
    return registry.members(sim, PRESET, {**over, **shrink}, seeds=1)


def _flops(task, batch) -> int:
    """Matmul/convolution FLOPs of one forward + loss + backward on `batch` (the optimiser update excluded)."""
    from torch.utils.flop_counter import FlopCounterMode

    xb, yb = batch
    with FlopCounterMode(display=False) as counter:
        task.loss(task.model(xb), yb).sum().backward()
    for p in task.model.parameters():
        p.grad = None
    return int(counter.get_total_flops())


def _trained(sim, members, task, budget: float, max_steps: int, out: dict, factor: float = 1.0) -> None:
    import torch

    from sims import engine
    from sims.threads import choose_threads, limited

    n_threads, how = choose_threads(task, None)
    out.update(threads=n_threads, threads_chosen=how)
    cfg = members[0]
    with limited(n_threads), engine.cpu_training(task.x.device):
        state = engine._new_state(task, members, None)
        task.model.train()
        for _ in range(2):  # warm-up: first-call allocations, optimiser state
            engine._train_step(task, cfg, state)
        k, t0 = 0, time.perf_counter()
        while k < max_steps and (time.perf_counter() - t0 < budget or k < 3):
            engine._train_step(task, cfg, state)
            k += 1
        step_s = factor * (time.perf_counter() - t0) / k
        out.update(step_s=step_s, steps_timed=k, steps=cfg.steps,
                   n_evals=len(engine.eval_schedule(cfg.steps, cfg.n_evals)))
        out.update(flops_per_step=int(factor * _flops(task, engine._batch(task, cfg, state))))
        print(json.dumps(out), flush=True)  # kept if the evaluation below runs past the limit
        task.model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            task.evaluate(task.model)
            probe, _ = engine._lc_note(task)
            if probe is not None:
                probe(task.model)
        out["eval_s"] = factor * (time.perf_counter() - t0)


def _grid(task, budget: float, out: dict) -> None:
    t0, done = time.perf_counter(), 0
    for i, point in enumerate(task.points):
        task.evaluate(i, point)
        done += 1
        if time.perf_counter() - t0 > budget:
            break
    spent = time.perf_counter() - t0
    out.update(points=len(task.points), points_timed=done, point_s=spent / done, grid_s=spent,
               complete=done == len(task.points))


def measure_one(name: str, budget: float, max_steps: int, shrink: bool = False) -> dict:
    """The cost record of `name`'s paper preset, measured in this process (at SHRINK[name]'s size with `shrink`)."""
    import torch

    from sims import engine, memory, registry
    from sims.kinds import kind_of

    sim = registry.get(name)
    out: dict = dict(name=name, kind=sim.kind)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = _uses_mnist(sim)
        over, factor = SHRINK[name] if shrink else ({}, 1.0)
        members = _members(sim, _mnist_npz(Path(tmp)) if synthetic else None, over)
        out["synthetic_mnist"] = synthetic
        if shrink:
            out.update(measured_at=over, extrapolated_by=factor)
        env = engine.Env(torch.device("cpu"), engine.resolve_dtype(members[0].dtype))
        if sim.memory is not None:
            need = sum(sim.memory(members, torch.empty(0, dtype=env.dtype).element_size()).values())
            out.update(memory_gib=need / 2**30, free_gib=memory.available(env.device) / 2**30)
            if need > memory.available(env.device):
                out["skipped"] = "does not fit in memory"
                return out
        t0 = time.perf_counter()
        task = sim.build(members, env)
        out["build_s"] = time.perf_counter() - t0
        if kind_of(sim).trained:
            _trained(sim, members, task, budget, max_steps, out, factor)
        else:
            _grid(task, budget, out)
    return out


def _uses_mnist(sim) -> bool:
    from sims import registry

    return getattr(registry.resolve(sim, PRESET, {}), "dataset", None) == "mnist"


def total_s(rec: dict) -> float | None:
    """The estimated seconds of a whole paper run from a record (None when it could not be measured)."""
    if "step_s" in rec:
        return rec.get("build_s", 0.0) + rec["steps"] * rec["step_s"] + rec["n_evals"] * rec.get("eval_s", 0.0)
    if "point_s" in rec:
        return rec.get("build_s", 0.0) + (rec["grid_s"] if rec["complete"] else rec["points"] * rec["point_s"])
    return None


def run_all(names: list[str], budget: float, max_steps: int, limit: float, shrink: list[str]) -> dict[str, dict]:
    records = {}
    for name in names:
        cmd = [sys.executable, "-m", "benchmarks.preset_costs", "--one", name,  # -m: benchmarks/lc.py would shadow lc
               "--budget", str(budget), "--max-steps", str(max_steps)] + (["--shrink", name] if name in shrink else [])
        t0 = time.perf_counter()
        try:
            res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit)
            lines, err = res.stdout, res.stderr
        except subprocess.TimeoutExpired as exc:
            lines, err = (exc.stdout or b"").decode(), f"stopped after {limit:.0f} s"
        found = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
        rec = found[-1] if found else dict(name=name, skipped=f"no measurement ({err.strip().splitlines()[-1:]})")
        if "step_s" in rec and "eval_s" not in rec:
            rec["note"] = f"one evaluation did not finish within the {limit:.0f} s limit; evaluations not counted"
        rec["wall_s"] = time.perf_counter() - t0
        rec["total_s"] = total_s(rec)
        records[name] = rec
        print(f"{name}: {json.dumps(rec)}", file=sys.stderr, flush=True)
    return records


def machine() -> str:
    import platform

    import torch

    model = platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s / 3600:.2f} h" if s >= 360 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def _under_hour(name: str, r: dict) -> str:
    """The largest preset of `name` that runs in under an hour on this CPU: paper when its estimate says so, else
    the default preset with its stated CPU runtime (sims/index.json)."""
    from sims.index import load

    if r.get("total_s") is not None and r["total_s"] < 3600 and ("eval_s" in r or "point_s" in r):
        return "paper"
    return f"default ({load()[name]['cpu_runtime']})"


def table(records: dict[str, dict]) -> str:
    rows = ["| setting | time per step (point) | timed | total steps (points) + evals | build | est. total, 2 cores "
            "| GFLOP per step (fwd+bwd) | largest preset < 1 h |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in records.items():
        at = (" (at " + ", ".join(f"{k}={v:,}" for k, v in r["measured_at"].items()) + f", x {r['extrapolated_by']:g})"
              if "measured_at" in r else "")
        if "step_s" in r:
            ev = f" + {r['n_evals']} x {r['eval_s']:.2g} s" if "eval_s" in r else " (evals not timed)"
            rows.append(f"| {name} | {r['step_s'] * 1e3:.3g} ms{at} | {r['steps_timed']} steps | {r['steps']:,}{ev} | "
                        f"{r['build_s']:.1f} s | {'' if 'eval_s' in r else '>= '}{_fmt_s(r['total_s'])} | "
                        f"{r['flops_per_step'] / 1e9:.3g} | {_under_hour(name, r)} |")
        elif "point_s" in r:
            how = "all" if r["complete"] else f"{r['points_timed']} of {r['points']}"
            rows.append(f"| {name} (grid) | {r['point_s']:.3g} s | {how} | {r['points']} points | {r['build_s']:.1f} s"
                        f" | {'' if r['complete'] else '>= '}{_fmt_s(r['total_s'])} | - | {_under_hour(name, r)} |")
        else:
            rows.append(f"| {name} | {r.get('skipped', 'n/a')} | | | | | | {_under_hour(name, r)} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=10.0, help="seconds of timed steps (or grid points) per setting")
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--limit", type=float, default=40.0, help="hard limit in seconds per setting (build included)")
    p.add_argument("--only", nargs="*", help="these settings only (default: every setting)")
    p.add_argument("--no-write", action="store_true", help=f"do not write {COSTS}")
    p.add_argument("--shrink", nargs="*", default=[], choices=sorted(SHRINK),
                   help="measure these at a smaller size (SHRINK) and scale the times back to the paper size")
    p.add_argument("--table", action="store_true", help=f"print the table of {COSTS.name} and exit (no measuring)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.table:
        print(table({n: r[PRESET] for n, r in json.loads(COSTS.read_text())["settings"].items() if PRESET in r}))
        return
    if args.one:
        print(json.dumps(measure_one(args.one, args.budget, args.max_steps, args.one in args.shrink)))
        return
    from sims.index import load

    load_before, t0 = os.getloadavg(), time.perf_counter()
    records = run_all(args.only or sorted(load()), args.budget, args.max_steps, args.limit, args.shrink)
    load_after = os.getloadavg()
    meta = dict(machine=machine(), date=datetime.date.today().isoformat(), preset=PRESET,
                load=[round(load_before[0], 2), round(load_after[0], 2)])
    print(f"{meta['machine']}; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print(table(records))
    under_hour = [n for n, r in records.items() if r.get("total_s") is not None and r["total_s"] < 3600]
    print(f"\nunder an hour on this CPU: {', '.join(under_hour) or 'none'}")
    if not args.no_write:
        old = json.loads(COSTS.read_text()) if COSTS.exists() else {}
        settings = old.get("settings", {})
        for name, r in records.items():
            settings.setdefault(name, {})[PRESET] = {k: v for k, v in r.items() if k != "name"}
        COSTS.write_text(json.dumps(dict(meta, settings=settings), indent=1) + "\n")
        print(f"wrote {COSTS}")


if __name__ == "__main__":
    main()
