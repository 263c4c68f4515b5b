"""Run directories on disk: config.json once, metrics.jsonl appended, summary.json, atomic checkpoints.

```
runs/<sim>/<timestamp>-<short-hash>/
  config.json      resolved config + environment
  metrics.jsonl    one JSON object per (eval step, member), flushed at every evaluation
  summary.json     status (running | completed | diverged | interrupted | failed), final metrics per member
  checkpoint.pt    latest training state, written to a temp file then renamed
  cache/*.pt       expensive baselines computed once (a resumed run reads them back)
  snapshots/step-<s>.pt  model states kept at chosen steps
  lock             while a process trains in the directory: its pid, host, command, start time (sims.locks)
  figures/*.png
```
A run killed at any point leaves a readable directory: metrics lines are flushed whole, a torn last
line (SIGKILL mid-write) is skipped with a warning by `read_metrics`, and every JSON file and the
checkpoint are replaced atomically. Non-finite numbers are written as JSON `null` (read back as NaN),
never as the non-JSON tokens NaN/Infinity. A damaged file is reported as a `RunDirError` naming the file.
Every .pt file holds only tensors, numbers, strings, lists and dicts (`plain`) and is read with
`torch.load(weights_only=True)` (`load_checkpoint`): nothing from disk is unpickled, so a run directory from
elsewhere never runs code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .locks import RunLock

__all__ = ["RunDirError", "check_root", "new_run_dir", "as_json", "write_text", "write_json", "read_json",
           "MetricsWriter", "read_metrics", "plain", "save_checkpoint", "load_checkpoint", "environment", "RunLock"]


class RunDirError(ValueError):
    """A run directory (or one of its files) is missing, damaged, or in use."""


def _clean(v: Any) -> Any:
    """JSON-safe: non-finite floats become null (read back as NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def as_json(obj: Any) -> Any:
    """`obj` as `write_json` then `read_json` give it back (tuples as lists, non-finite floats as None)."""
    return json.loads(json.dumps(_clean(obj), default=str, allow_nan=False))


def write_text(path: Path, text: str) -> None:
    """Write `text` to a temp file of its own beside `path`, then rename it over `path` (keeping its permissions):
    a reader never sees half a file, and two writers never share a temp file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", newline="") as f:  # written as given (csv's \r\n stays)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(_clean(obj), f, indent=2, default=str, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in `path`; a missing, empty or unparsable file is a RunDirError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunDirError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err}); the file is damaged") from None


def check_root(root) -> Path:
    """A root for run directories that can be used: not empty, not a file, writable (or creatable).

    Raises RunDirError naming the problem; creates nothing.
    """
    if root is None or str(root).strip() == "":
        raise RunDirError("--out is empty; give a directory")
    root = Path(root)
    existing = next((p for p in [root, *root.parents] if p.exists()), None)
    if root.exists() and not root.is_dir():
        raise RunDirError(f"--out {root} is a file, not a directory")
    if existing is not None and not existing.is_dir():
        raise RunDirError(f"--out {root}: {existing} is a file, not a directory")
    if existing is not None:  # probe: can a file be made there? (os.access says yes to root everywhere)
        try:
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".sims-write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise RunDirError(f"--out {root}: cannot write in {existing} ({err.strerror or err})") from None
    return root


def new_run_dir(root: Path, sim: str, config: dict) -> Path:
    """Create runs/<sim>/<timestamp>-<short-hash>/ (with figures/); the hash is of the config. Never reuses a
    directory that exists (also when two processes start the same config in the same second)."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = check_root(root) / sim
    base.mkdir(parents=True, exist_ok=True)
    for k in range(10_000):
        d = base / (f"{stamp}-{digest}" + (f"-{k}" if k else ""))
        try:
            d.mkdir()
        except FileExistsError:
            continue
        (d / "figures").mkdir()
        return d
    raise RunDirError(f"could not create a new run directory under {base}")


class MetricsWriter:
    """Appends one JSON line per (step, member); each evaluation is written and flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, step: int, metrics: dict[str, Any], n_members: int, extra: dict[str, list] | None = None,
              *, index: str = "step"):
        """metrics: name -> sequence of E values (or a scalar shared by all members). `index` names the record's
        position: 'step' (an eval step of a trained run) or 'point' (a grid point of a grid run)."""
        lines = []
        for e in range(n_members):
            rec = {index: int(step), "member": e}
            for k, v in (extra or {}).items():
                rec[k] = v[e]
            for k, v in metrics.items():
                val = v[e] if hasattr(v, "__len__") else v
                rec[k] = float(val)
            lines.append(json.dumps(_clean(rec), allow_nan=False))
        with open(self.path, "a") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_after(self, step: int) -> None:
        """Keep only records with step <= `step` (used on resume from an earlier checkpoint)."""
        if not self.path.exists():
            return
        keep = [json.dumps(_clean(r), allow_nan=False) for r in read_metrics(self.path, warn=False)
                if r[_index_key(r)] <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, self.path)


def _index_key(rec: dict) -> str:
    return "step" if "step" in rec else "point"


def read_metrics(path: Path, *, warn: bool = True) -> list[dict]:
    """All records of metrics.jsonl; a torn (unparsable) line is skipped with a warning.

    A record must hold its index (`step` for a trained run, `point` for a grid run) and `member`; a line
    without them is a RunDirError naming the file and the line.
    """
    out = []
    path = Path(path)
    if not path.exists():
        return out
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if warn:
                    warnings.warn(f"{path}: skipping unreadable line {i} (a run killed mid-write)")
                continue
            if not isinstance(rec, dict) or not ({"step", "member"} <= rec.keys() or {"point", "member"} <= rec.keys()):
                raise RunDirError(f"{path}: line {i} is not a metrics record (it needs 'step' or 'point', and "
                                  f"'member'): {line[:80]!r}")
            out.append({k: (math.nan if v is None else v) for k, v in rec.items()})
    return out


def plain(obj: Any) -> Any:
    """`obj` as what `torch.load(..., weights_only=True)` reads back: tensors, numbers, strings, None, and lists,
    tuples and dicts of them. numpy arrays become tensors, numpy scalars Python numbers, a `torch.Generator` its
    state (a uint8 tensor), a dataclass a dict of its fields; anything else is a TypeError (a bug: a state that
    could only be read back by unpickling it)."""
    if isinstance(obj, np.generic):  # before the numbers: np.float64 is a float
        return obj.item()
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("a numpy array of Python objects cannot be saved without pickle")
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"dict key {k!r} ({type(k).__name__}) cannot be saved without pickle")
            out[k] = plain(v)
        if hasattr(obj, "_metadata"):  # a module's state_dict: its version numbers (a dict of dicts of ints)
            out._metadata = plain(dict(obj._metadata))
        return out
    if isinstance(obj, (list, tuple)):  # torch.Size included
        return (list if isinstance(obj, list) else tuple)(plain(v) for v in obj)
    raise TypeError(f"a {type(obj).__name__} cannot be saved without pickle; convert it to tensors, numbers, "
                    "strings, lists or dicts")


def save_checkpoint(path: Path, state: Any) -> None:
    """Save `plain(state)` (loadable with weights_only=True) to a temp file, then rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(plain(state), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu", *, fix: str = "") -> Any:
    """What `save_checkpoint` wrote (a checkpoint, a cache value, a snapshot), loaded with `weights_only=True`:
    nothing in the file is unpickled, so a file from elsewhere never runs code.

    A missing, empty, truncated or foreign file (one holding objects other than tensors, numbers, strings, lists
    and dicts) is a one-line RunDirError naming it; `fix` says what to do about it (default: start a new run).
    """
    path = Path(path)
    fix = fix or "start a new run"
    if not path.is_file():
        raise RunDirError(f"{path} does not exist" if not path.exists() else f"{path} is not a file; {fix}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        first = next((ln.strip() for ln in str(err).splitlines() if "GLOBAL" in ln or "Unsupported" in ln), "")
        raise RunDirError(f"{path} holds objects other than tensors, numbers, strings, lists and dicts ({first[:120]}"
                          f"); it was not written by this package and is not loaded (that could run code); "
                          f"{fix}") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, ImportError, KeyError) as err:
        size = path.stat().st_size
        msg = " ".join(str(err).split())[:120]
        raise RunDirError(f"{path} cannot be read ({size} bytes; {type(err).__name__}: {msg}); the file is damaged; "
                          f"{fix}") from None


def _git_revision() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, dtype: torch.dtype) -> dict:
    """Package versions, device, dtype and git revision, for config.json."""
    import numpy

    env = dict(python=sys.version.split()[0], platform=platform.platform(), torch=torch.__version__,
               numpy=numpy.__version__, device=str(device), dtype=str(dtype).replace("torch.", ""),
               git_revision=_git_revision(), threads=torch.get_num_threads())
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
