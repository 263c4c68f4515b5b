"""The `sims` command: list | show | run | sweep | plot | reproduce | atlas.

Exit codes: 0 success, 1 a run failed (diverged, crashed, interrupted) or a module failed to import, 2 a usage
error. `list`, `show` and `--help` read the shipped index (`sims.index`) and import neither torch nor a setting;
`run NAME` imports the one setting module that registers NAME.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from pathlib import Path

from . import checks
from .catalog import ModuleLoadError
from .config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    """['lr=0.1', 'width=8'] -> {'lr': '0.1', 'width': '8'}; a key given twice is an error."""
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"--set expects key=value; got {p!r}")
        k, v = (part.strip() for part in p.split("=", 1))
        if k in out:
            raise ConfigError(f"--set {k} is given twice ({out[k]!r} and {v!r}); give it once")
        out[k] = v
    return out


def _stats(vals) -> str:
    finite = [v for v in vals if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return "n/a"
    mean = sum(finite) / len(finite)
    if len(vals) == 1:
        return f"{mean:.4g}"
    return f"{mean:.4g} [{min(finite):.4g}, {max(finite):.4g}]"


def print_summary(run) -> None:
    s = run.summary
    span = f"{s.get('points')} grid points" if run.index == "point" else f"{s.get('step')} steps"
    print(f"\n{run.sim_name} ({run.preset}): {s['status']}, {span}, {len(run.seeds)} member(s), "
          f"{s.get('elapsed_s')} s")
    if run.index == "point":
        _print_grid(run)
    from lc.keys import per_site

    final = s.get("final", {})
    names = [k for k in final if not per_site(k)]
    if names:
        width = max(len(k) for k in names)
        label = "mean [min, max] over members" if len(run.seeds) > 1 else "value"
        print(f"  {'metric'.ljust(width)}  {label}")
        for k in names:
            print(f"  {k.ljust(width)}  {_stats(final[k])}")
    if s.get("lc") not in (None, "measured"):
        print(f"  LC: {s['lc']}")
    print(f"run directory: {run.dir}")
    for f in sorted((run.dir / "figures").glob("*.png")):
        print(f"figure: {f}")


def _print_grid(run) -> None:
    """One row per grid point: its coordinates and the mean of each metric over members."""
    import numpy as np

    names = run.metric_names
    print("  " + "  ".join(f"{n:>12}" for n in names))
    table = np.stack([np.nanmean(run.metric(n), axis=1) for n in names], axis=1)
    for row in table:
        print("  " + "  ".join(f"{v:>12.4g}" for v in row))


def cmd_list(args) -> int:
    from .index import load

    sims = list(load().values())
    width = max(len(s["name"]) for s in sims)
    for s in sims:
        print(f"{s['name'].ljust(width)}  {s['cpu_runtime']:>8}  {s['description']}")
    return EXIT_OK


def cmd_show(args) -> int:
    from . import costs, index as light_index
    from .catalog import unknown

    index = light_index.load()
    if args.name not in index:
        raise unknown("simulation", args.name, index)
    sim = index[args.name]
    print(f"{sim['name']} ({sim['kind']}): {sim['doc']}\n\ndefault preset on a 2-core CPU: {sim['cpu_runtime']}\n"
          f"member-wise fields (may differ within one ensemble): {', '.join(sim['memberwise'])}\n\nfields:")
    rows = sim["fields"]
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"  {r['name'].ljust(w)}  {r['type']:<5} = {r['default']!r:<10} {r['help']}  (valid: {r['valid']})")
    print("\npresets:")
    for p, over in sim["presets"].items():
        print(f"  {p}: {dict(over) if over else '(the defaults)'}")
    if args.preset is not None:
        print(f"\ncost of preset {args.preset}: {costs.describe(args.name, args.preset, sim['presets'])}")
    metrics = sim.get("metrics") or {}
    print("\nmetrics:" if metrics else "\nmetrics: not declared")
    w = max((len(k) for k in metrics), default=0)
    for k, meaning in metrics.items():
        print(f"  {k.ljust(w)}  {meaning}")
    return EXIT_OK


def cmd_run(args) -> int:
    from . import api, engine

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    try:
        if args.resume:
            if args.set or args.preset != "default" or args.seeds != 1 or args.name or args.dtype or args.out:
                raise ConfigError("--resume continues a run with its own config; drop NAME/--preset/--set/--seeds/"
                                  "--dtype/--out")
            status = api.Run(Path(args.resume)).summary.get("status")
            run = api.resume(args.resume, device=args.device, quiet=args.quiet, log=log, threads=args.threads,
                             figures=not args.no_figures)
            if status in ("completed", "diverged"):
                print(f"{run.dir} had already ended ({status}); it is left as it is")
        else:
            overrides = _parse_sets(args.set)
            if args.dtype:
                if "dtype" in overrides:
                    raise ConfigError("give the dtype once: --dtype or --set dtype=..., not both")
                overrides["dtype"] = args.dtype
            run = api.run(args.name, preset=args.preset, seeds=args.seeds, device=args.device, out=args.out,
                          quiet=args.quiet, log=log, threads=args.threads, figures=not args.no_figures,
                          **{**args.file_set, **overrides})
    except engine.Interrupted as exc:
        print(f"sims: interrupted: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except api.RunFailed as exc:
        from .outdir import os_error_in, os_error_message

        fs = os_error_in(exc.__cause__)
        print(f"sims: {exc}" if fs is None else f"sims: run {args.resume or args.name} failed: {os_error_message(fs)}",
              file=sys.stderr)
        return EXIT_FAILED
    print_summary(run)
    status = run.summary["status"]
    if status != "completed":
        print(f"sims: run ended with status {status!r}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_plot(args) -> int:
    from . import style

    try:
        fmt, dpi = style.check_format(args.format), style.check_dpi(args.dpi)
    except ValueError as exc:
        raise ConfigError(f"--format/--dpi: {exc}") from None
    with style.output(fmt, dpi):
        return _plot(args)


def _plot(args) -> int:
    from . import api, sweep, sweepfiles

    if (Path(args.run_dir) / "sweep.json").exists():
        if not (args.x and args.y):
            raise ConfigError("a sweep directory needs --x KEY and --y METRIC (and optionally --hue KEY)")
        print(f"figure: {sweep.figure(args.run_dir, args.x, args.y, args.hue)}")
        note = sweepfiles.progress(args.run_dir)
        if note:
            print(f"sims plot: note: {note}", file=sys.stderr)
        return EXIT_OK
    if args.x or args.y or args.hue:
        raise ConfigError(f"--x/--y/--hue are for sweep directories; {args.run_dir} holds no sweep.json")
    run = api.Run(Path(args.run_dir))
    if args.movie:
        from .movie import partition_movie

        print(f"movie: {partition_movie(run)}")
        return EXIT_OK
    drawn = None if args.redraw else run.current_figures()
    if drawn is not None:
        print("sims plot: figures newer than the results, in this format: left as they are (--redraw)", file=sys.stderr)
    for f in drawn if drawn is not None else run.figures():
        print(f"figure: {f}")
    return EXIT_OK


def cmd_reproduce(args) -> int:
    from .claims.runner import reproduce, table
    from .engine import resolve_device

    resolve_device(args.device)
    if args.fresh is not None:
        return _reproduce_fresh(args)
    report = reproduce(args.key, preset=args.preset, out=args.out, device=args.device, quiet=args.quiet,
                       papers_dir=args.update_papers, seed=args.seed,
                       workers=args.workers, scheduler=args.scheduler, threads=args.threads,
                       log=(lambda m: None) if args.quiet else print)
    print(table(report))
    print(f"\nreport: {report['dir']}/report.md")
    if report["run_failures"]:
        print("sims: some runs failed: " + "; ".join(report["run_failures"]), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _reproduce_fresh(args) -> int:
    from .claims.fresh import fresh_table, reproduce_fresh

    if args.seed is not None or args.update_papers:
        raise ConfigError("--fresh draws its own seeds and writes no page: drop --seed / --update-papers")
    try:
        report = reproduce_fresh(args.key, args.fresh, preset=args.preset, out=args.out, device=args.device,
                                 quiet=args.quiet, workers=args.workers, scheduler=args.scheduler,
                                 threads=args.threads, log=(lambda m: None) if args.quiet else print)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    print(fresh_table(report))
    print(f"\nreport: {report['dir']}/report.md")
    return EXIT_FAILED if report["run_failures"] else EXIT_OK


def cmd_atlas(args) -> int:
    from .atlas import atlas
    from .engine import resolve_device

    resolve_device(args.device)
    result = atlas(args.preset, args.out, device=args.device, workers=args.workers, scheduler=args.scheduler,
                   threads=args.threads, log=(lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr)))
    print((Path(result["dir"]) / "atlas.md").read_text())
    print(f"atlas: {result['dir']}/atlas.md, atlas.csv, atlas.png")
    if result["failures"]:
        print("sims: some runs failed: " + "; ".join(result["failures"]), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_sweep(args) -> int:
    from . import sweepfiles
    from .engine import resolve_device
    from .sweep import parse_grid, sweep

    resolve_device(args.device)
    grid, base = parse_grid(args.grid or []), _parse_sets(args.set)
    both = sorted(set(grid) & set(base))
    if both:
        raise ConfigError(f"{both} given both as --grid and as --set; give each key once")
    # --config FILE underneath: a key given on the command line (as --grid or --set) replaces the file's
    grid = {**{k: v for k, v in args.file_grid.items() if k not in base}, **grid}
    base = {**{k: v for k, v in args.file_set.items() if k not in grid}, **base}
    index = sweep(args.name, grid, preset=args.preset, seeds=args.seeds, base=base, out=args.out,
                  device=args.device, workers=args.workers, scheduler=args.scheduler, threads=args.threads,
                  figures=args.figures,
                  log=(lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr)))
    for g in index["groups"]:
        where = g["dir"] if Path(g["dir"]).exists() else "(no run directory: it stopped before writing one)"
        print(f"{g['status']:<11} {len(g['members'])} member(s) -> {where}")
    print(f"sweep: {index['dir']}/sweep.json and results.csv ({index['executor']}, {index['elapsed_s']} s)")
    for line in sweepfiles.failures(index):
        print(f"sims sweep: {line}", file=sys.stderr)
    return EXIT_OK if all(g["status"] == "completed" for g in index["groups"]) else EXIT_FAILED


class _Version(argparse.Action):
    """`sims --version`: the version, read only when asked (importlib.metadata costs ~50 ms)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        print(f"sims {__version__}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sims", description="Named simulations of implicit bias, benign "
                                "overfitting and grokking, instrumented with local complexity.")
    p.add_argument("--version", action=_Version, nargs=0, help="show the installed version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="names, CPU runtime of the default preset, one-line description")
    s = sub.add_parser("show", help="fields, types, defaults, meanings and presets of a simulation")
    s.add_argument("name")
    s.add_argument("--preset", help="also state its measured time per step and estimated total (sims/costs.json)")
    r = sub.add_parser("run", help="run a named simulation")
    r.add_argument("name", nargs="?", help="simulation name (see `sims list`)")
    r.add_argument("--preset", default="default", help="ci | default | paper (default: default)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    r.add_argument("--config", metavar="FILE.toml", help="config fields from a TOML file (--set overrides it)")
    r.add_argument("--seeds", type=int, default=1, help="members trained together, seeds seed..seed+K-1")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda[:K]")
    r.add_argument("--dtype", choices=("float32", "float64"), help="shorthand for --set dtype=...")
    r.add_argument("--out", help="root directory of runs (default ./runs or $SIMS_RUNS)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    r.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    r.add_argument("--threads", type=int, help="CPU threads (default: the faster of 1 and all, timed at the start)")
    r.add_argument("--no-figures", action="store_true", help="draw no figures (`sims plot RUN_DIR` draws them later)")
    _sweep_and_atlas(sub)
    _plot_and_reproduce(sub)
    return p


def _sweep_and_atlas(sub) -> None:
    """The `sweep` and `atlas` subcommands' arguments."""
    sw = sub.add_parser("sweep", help="run a grid of configs (seeds folded into ensembles), optionally on Dask")
    sw.add_argument("name")
    sw.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="a swept field (repeatable)")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="a fixed override (repeatable)")
    sw.add_argument("--config", metavar="FILE.toml", help="fixed fields and a [grid] table of lists from a TOML file "
                    "(--set and --grid override it)")
    sw.add_argument("--preset", default="default")
    sw.add_argument("--seeds", type=int, default=1)
    sw.add_argument("--device", default="auto")
    sw.add_argument("--out", help="sweep directory (default runs/sweeps/<name>-<time>)")
    sw.add_argument("--workers", type=int, default=0, help="Dask LocalCluster workers on 127.0.0.1 (0: run here)")
    sw.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    sw.add_argument("--threads", type=int, help="CPU threads per run (default: timed per run)")
    sw.add_argument("--figures", action="store_true", help="also draw each ensemble run's standard figures")
    sw.add_argument("--quiet", action="store_true")
    at = sub.add_parser("atlas", help="every transition beside its partition dynamics, across settings")
    at.add_argument("--preset", default="default")
    at.add_argument("--out", help="atlas directory (default runs/atlas/<preset>-<time>); reused runs are not rerun")
    at.add_argument("--device", default="auto")
    at.add_argument("--workers", type=int, default=0, help="Dask LocalCluster workers on 127.0.0.1 (0: run here)")
    at.add_argument("--scheduler", help="address of an existing Dask scheduler")
    at.add_argument("--threads", type=int, help="CPU threads per run (default: timed per run)")
    at.add_argument("--quiet", action="store_true")


def _plot_and_reproduce(sub) -> None:
    """The `plot` and `reproduce` subcommands' arguments."""
    pl = sub.add_parser("plot", help="redraw the figures of a run, or plot a sweep's results")
    pl.add_argument("run_dir", help="a run directory, or a sweep directory (with --x and --y)")
    pl.add_argument("--x", help="sweep: the swept parameter on the x axis")
    pl.add_argument("--y", help="sweep: the final metric on the y axis")
    pl.add_argument("--hue", help="sweep: one line per value of this parameter")
    pl.add_argument("--format", default="png", help="file format of the figures: png, pdf or svg (default png)")
    pl.add_argument("--dpi", default="120", help="resolution of raster output in dots per inch, 20-1200 (default 120)")
    pl.add_argument("--redraw", action="store_true", help="draw even figures newer than the results, in this format")
    pl.add_argument("--movie", action="store_true", help="instead of the figures, write figures/partition-movie.gif: "
                    "the exact linear regions on the run's slice at every snapshot (xor-cluster, modular-addition, "
                    "image-grokking)")
    rp = sub.add_parser("reproduce", help="run a paper's claims and write report.md / report.json")
    rp.add_argument("key", help="paper key, e.g. xu2024")
    rp.add_argument("--preset", default="default")
    rp.add_argument("--config", metavar="FILE.toml", help="options (preset, seed, workers, threads, device, "
                    "scheduler) from a TOML file; flags given here override it")
    rp.add_argument("--out", help="report directory (default runs/reproduce/<key>-<preset>-<time>)")
    rp.add_argument("--device", default="auto")
    rp.add_argument("--quiet", action="store_true")
    rp.add_argument("--seed", type=int, help="first seed of every claim's runs (default: the paper's claim seeds)")
    rp.add_argument("--fresh", type=int, metavar="K", help="run the claims on K base seeds drawn at random from a "
                    "range no one tunes on; report each claim's verdict per seed and its pass rate")
    rp.add_argument("--workers", type=int, default=0, help="Dask LocalCluster workers on 127.0.0.1 (0: run here)")
    rp.add_argument("--scheduler", help="address of an existing Dask scheduler")
    rp.add_argument("--threads", type=int, help="CPU threads per run (default: timed per run)")
    rp.add_argument("--update-papers", metavar="PAPERS_DIR", nargs="?", const="papers",
                    help="also write the claims table and figures into PAPERS_DIR/<key>.md (default papers/)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run" and not args.name and not args.resume:
        print("sims run: error: give a simulation NAME or --resume RUN_DIR", file=sys.stderr)
        return EXIT_USAGE
    handler = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "plot": cmd_plot, "reproduce": cmd_reproduce,
               "sweep": cmd_sweep, "atlas": cmd_atlas}
    try:
        checks.command_config(args)
        checks.command(args)
        return handler[args.command](args)
    except ModuleLoadError as exc:
        print(f"sims {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ConfigError, FileNotFoundError) as exc:
        print(f"sims {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # a bad device, bad input caught at build time, a damaged run directory (RunDirError)
        print(f"sims {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`sims list | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return EXIT_OK
    except OSError as exc:  # read-only, permission, disk full: one line naming the file and what to do
        from .outdir import os_error_message

        print(f"sims {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_FAILED if exc.errno in (errno.ENOSPC, errno.EDQUOT) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
