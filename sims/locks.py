"""One lock rule for every writer: `<dir>/lock` while a process writes into a directory.

`sims run` (and `--resume`) lock their run directory; `sims sweep`, `sims atlas` and `sims reproduce` lock
their `--out` directory for the whole command. The lock file holds the holder's pid, host, command, the wall
time it was taken and the process's start time. A second process on the same directory gets a RunDirError
(exit 2) naming the holder. A stale lock is taken over: its process is gone, or its pid now belongs to another
program (the process with that pid started at another time than the holder did; read from /proc/<pid>/stat,
or from `ps -o etime=` where /proc is missing).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["RunLock", "process_start"]

_TOLERANCE_S = 2.0  # wall-clock start times (the `ps` fallback) are known to about a second


def _proc_ticks(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat); None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name (field 2) may hold spaces and parentheses
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _ps_start(pid: int) -> float | None:
    """Wall-clock start time of process `pid` from `ps -o etime=` ([[dd-]hh:]mm:ss elapsed; POSIX)."""
    try:
        out = subprocess.run(["ps", "-o", "etime=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    if not text:
        return None
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(x) for x in rest.split(":")]
        seconds = sum(v * 60 ** k for k, v in enumerate(reversed(parts))) + 86400 * int(days or 0)
    except ValueError:
        return None
    return time.time() - seconds


def _boot_time() -> float | None:
    """The boot time (epoch s) from /proc/stat's btime line; None without /proc."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_start(pid: int) -> dict:
    """How to recognise process `pid` later: {'ticks': /proc start ticks, 'wall': start time in epoch s}, or
    only 'wall' (from `ps`) where /proc is missing; {} when neither can be read."""
    ticks, boot = _proc_ticks(pid), _boot_time()
    if ticks is not None and boot is not None:
        return dict(ticks=ticks, wall=boot + ticks / os.sysconf("SC_CLK_TCK"))
    wall = _ps_start(pid)
    return {} if wall is None else dict(wall=wall)


def _default_command() -> str:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    prog = "sims" if prog in ("__main__.py", "sims") else prog
    return " ".join([prog, *sys.argv[1:3]])


class RunLock:
    """An exclusive lock on a directory while a process writes into it (a context manager).

    Taking a lock held by a live process raises RunDirError naming the holder (pid, command, start time); a
    stale lock is taken over. The lock is released on exit, also after an exception.
    """

    def __init__(self, directory: Path, command: str | None = None):
        self.path = Path(directory) / "lock"
        pid = os.getpid()
        self.me = dict(pid=pid, host=socket.gethostname(), command=command or _default_command(),
                       started=time.time(), start=process_start(pid))

    def __enter__(self) -> "RunLock":
        from .store import RunDirError

        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if self._alive(holder):
                    raise RunDirError(f"{self.path.parent} is in use by {_describe(holder)}; wait for it to finish "
                                      "(or stop it) first") from None
                self._take_over(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self.me, f)
            return self
        raise RunDirError(f"could not lock {self.path.parent}: another process keeps taking the lock")

    def __exit__(self, *exc) -> None:
        if self._holder() == self.me:
            self.path.unlink(missing_ok=True)

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _take_over(self, seen: dict | None) -> None:
        """Remove a stale lock, unless another process replaced it meanwhile."""
        if self._holder() == seen:
            self.path.unlink(missing_ok=True)

    def _alive(self, holder: dict | None) -> bool:
        """Whether the lock's holder still runs (a lock from another host is assumed alive)."""
        if holder is None:  # being written right now, or garbage: a fresh file is held, an old one stale
            try:
                return time.time() - self.path.stat().st_mtime < 5
            except FileNotFoundError:
                return False
        if holder.get("host") != self.me["host"]:
            return True
        try:
            pid = int(holder["pid"])
            os.kill(pid, 0)
        except OSError as err:
            if err.errno != errno.EPERM:
                return False
        except (KeyError, ValueError, TypeError, OverflowError):
            return False
        return _same_process(pid, holder, self.path)


def _same_process(pid: int, holder: dict, path: Path) -> bool:
    """Whether the live process `pid` is the one that wrote the lock (not a later program given the same pid)."""
    recorded = holder.get("start") if isinstance(holder.get("start"), dict) else {}
    now = process_start(pid)
    if "ticks" in recorded and "ticks" in now:
        return recorded["ticks"] == now["ticks"]
    if "wall" not in now:
        return True  # cannot tell: assume it is the holder
    taken = holder.get("started")
    if not isinstance(taken, (int, float)):
        try:
            taken = path.stat().st_mtime  # a lock written before start times were recorded
        except FileNotFoundError:
            return False
    return now["wall"] <= taken + _TOLERANCE_S  # the holder started before it took the lock


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "a process that is taking the lock right now"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return (f"process {holder.get('pid')} on {holder.get('host')} (`{holder.get('command', '?')}`, "
            f"started {when})")
