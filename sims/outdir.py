"""The one rule for `--out` directories: never overwrite or delete what this package did not write.

Every command that writes into a directory it is given (`sims sweep`, `atlas`, `reproduce` into `--out`;
`sims run` into its root of runs; `sims plot` into a run's or sweep's own `figures/`) follows it:

- a directory that does not exist, or is empty, is created and marked: `.implicit-bias-lab.json` names the
  package and the command that made it;
- a directory the same command made before (its marker; for directories written before the marker existed,
  the index the command writes: sweep.json, atlas.json, report.json) is reused or resumed;
- anything else (a foreign non-empty directory, or one another command made) is refused with a ConfigError
  (exit 2) naming it, before anything is written.

A root of runs (`sims run --out ROOT`, default ./runs) holds only `<simulation>/<run>/` folders (and the default
root's `sweeps/`, `atlas/`, `reproduce/`); a root holding anything else is foreign.

`os_error_message` turns a filesystem error (read-only, disk full, permission) into one line naming the file
and what to do.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

from . import store
from .config import ConfigError

__all__ = ["MARKER", "owner", "check", "claim", "check_runs_root", "os_error_message", "os_error_in"]

MARKER = ".implicit-bias-lab.json"
PACKAGE = "implicit-bias-lab"
LEGACY = {"sweep": "sweep.json", "atlas": "atlas.json", "reproduce": "report.json"}  # before the marker existed
_DEFAULT_ROOT_DIRS = {"sweeps", "atlas", "reproduce"}


def owner(root: Path) -> str | None:
    """The command that made directory `root` (from its marker or its index file); None for a foreign one."""
    root = Path(root)
    marker = root / MARKER
    if marker.is_file():
        try:
            meta = store.read_json(marker)
        except store.RunDirError:
            meta = None
        if isinstance(meta, dict) and meta.get("package") == PACKAGE:
            return str(meta.get("command"))
    for command, index in LEGACY.items():
        if (root / index).is_file():
            return command
    return None


def check(root, command: str) -> Path:
    """`root` as a Path if `command` may write there (missing, empty, or made by `command`); writes nothing.

    Raises ConfigError naming the directory (and store.RunDirError for a path that cannot be a directory)."""
    root = store.check_root(root)
    if not root.exists():
        return root
    made_by = owner(root)
    if made_by == command or all(_in_progress(p) for p in root.iterdir()):
        return root
    if made_by is not None:
        raise ConfigError(f"--out {root} was made by `sims {made_by}`, not `sims {command}`; choose another --out "
                          "(results are never overwritten)")
    raise ConfigError(f"--out {root} is not empty and was not made by `sims {command}`; choose a new or empty "
                      "directory (files this package did not write are never overwritten)")


def _in_progress(entry: Path) -> bool:
    """A file another process of this package is writing as it claims the directory: its lock, or the marker's
    temp file (`store.write_text` names it .<name>.<random>.tmp); a directory holding only these counts as empty."""
    return entry.name == "lock" or (entry.name.startswith(f".{MARKER}.") and entry.name.endswith(".tmp"))


def claim(root, command: str) -> Path:
    """Check `root` (see `check`), create it if needed and mark it as made by `command`; returns it."""
    root = check(root, command)
    root.mkdir(parents=True, exist_ok=True)
    if owner(root) != command or not (root / MARKER).is_file():
        _write_marker(root, command)
    return root


def _write_marker(root: Path, command: str) -> None:
    """The marker, atomically (`store.write_text`: two processes may claim one directory at once)."""
    meta = dict(package=PACKAGE, command=command, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    store.write_text(root / MARKER, json.dumps(meta) + "\n")


def check_runs_root(root, simulations) -> Path:
    """`root` as a Path if `sims run` may create run directories under it: missing, empty, or holding only
    `<simulation>/` folders of runs (names in `simulations`) and the default root's sweeps/, atlas/, reproduce/
    (hidden files aside). Raises ConfigError naming what is foreign; writes nothing."""
    root = store.check_root(root)
    if not root.exists():
        return root
    allowed = set(simulations) | _DEFAULT_ROOT_DIRS
    foreign = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")
                     and not (p.is_dir() and p.name in allowed))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(f"--out {root} is not a root of runs (it holds {shown}); choose a new or empty directory, "
                          "or one that holds only runs")
    return root


_ADVICE = {
    errno.ENOSPC: ("the disk is full; free space, then rerun the command (finished results are kept; a run "
                   "continues with `sims run --resume RUN_DIR`)"),
    errno.EDQUOT: "the disk quota is used up; free space, then rerun the command (finished results are kept)",
    errno.EROFS: "the file system is read-only; copy the directory somewhere writable or choose another --out",
    errno.EACCES: "no permission to write there; fix the permissions or choose another --out",
    errno.EPERM: "no permission to write there; fix the permissions or choose another --out",
    errno.EISDIR: "a directory is in the way of a file; move it aside",
    errno.ENOTDIR: "a file is in the way of a directory; move it aside",
}


def os_error_message(err: OSError) -> str:
    """One line for a filesystem error: the file, what went wrong and what to do."""
    where = err.filename if err.filename is not None else "a file"
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    what = err.strerror or str(err)
    advice = _ADVICE.get(err.errno, "check the path and rerun the command")
    return f"cannot write or read {where} ({what}): {advice}"


def os_error_in(err: BaseException | None) -> OSError | None:
    """The filesystem error behind `err` (itself or a cause in its chain), if any; not a missing file."""
    while err is not None:
        if isinstance(err, OSError) and err.errno is not None and not isinstance(err, FileNotFoundError):
            return err
        err = err.__cause__ or err.__context__
    return None
