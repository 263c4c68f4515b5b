"""Run directories on disk: config.json once, metrics.jsonl appended, summary.json, atomic checkpoints.

```
runs/<sim>/<timestamp>-<short-hash>/
  config.json      resolved config + environment
  metrics.jsonl    one JSON object per (eval step, member), flushed at every evaluation
  summary.json     status (running | completed | diverged | interrupted | failed), final metrics per member
  checkpoint.pt    latest training state, written to a temp file then renamed
  figures/*.png
```
A run killed at any point leaves a readable directory: metrics lines are flushed whole, a torn last
line (SIGKILL mid-write) is skipped with a warning by `read_metrics`, and every JSON file and the
checkpoint are replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch

__all__ = ["new_run_dir", "write_json", "read_json", "MetricsWriter", "read_metrics", "save_checkpoint",
           "load_checkpoint", "environment"]


def _clean(v: Any) -> Any:
    """JSON-safe: non-finite floats become null (read back as NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(_clean(obj), f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def new_run_dir(root: Path, sim: str, config: dict) -> Path:
    """Create runs/<sim>/<timestamp>-<short-hash>/ (with figures/); the hash is of the config."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / sim
    d = base / f"{stamp}-{digest}"
    k = 1
    while d.exists():
        d = base / f"{stamp}-{digest}-{k}"
        k += 1
    (d / "figures").mkdir(parents=True)
    return d


class MetricsWriter:
    """Appends one JSON line per (step, member); each evaluation is written and flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, step: int, metrics: dict[str, Any], n_members: int, extra: dict[str, list] | None = None):
        """metrics: name -> sequence of E values (or a scalar shared by all members)."""
        lines = []
        for e in range(n_members):
            rec = {"step": int(step), "member": e}
            for k, v in (extra or {}).items():
                rec[k] = v[e]
            for k, v in metrics.items():
                val = v[e] if hasattr(v, "__len__") else v
                rec[k] = float(val)
            lines.append(json.dumps(_clean(rec)))
        with open(self.path, "a") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_after(self, step: int) -> None:
        """Keep only records with step <= `step` (used on resume from an earlier checkpoint)."""
        if not self.path.exists():
            return
        keep = [json.dumps(r) for r in read_metrics(self.path, warn=False) if r["step"] <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, self.path)


def read_metrics(path: Path, *, warn: bool = True) -> list[dict]:
    """All records of metrics.jsonl; a torn (unparsable) line is skipped with a warning."""
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
            out.append({k: (math.nan if v is None else v) for k, v in rec.items()})
    return out


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temp file, then rename over the old checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=False)


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


def iter_member_values(records: Iterable[dict], name: str, n_members: int):
    """Group `name` by step: yields (step, [value per member])."""
    by_step: dict[int, list] = {}
    for r in records:
        if name in r:
            by_step.setdefault(r["step"], [math.nan] * n_members)[r["member"]] = r[name]
    for s in sorted(by_step):
        yield s, by_step[s]
