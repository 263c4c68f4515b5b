"""One lock rule for every writer: a second process on a directory gets exit 2 naming the holder; a stale lock
(dead pid, or a pid now used by another program) is taken over, with /proc and with the `ps` fallback."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sims import locks, store
from sims.cli import main


def _lock(d, **fields):
    d.mkdir(parents=True, exist_ok=True)
    holder = {**dict(host=socket.gethostname(), command="sims sweep other", started=time.time()), **fields}
    (d / "lock").write_text(json.dumps(holder))
    return holder


@pytest.fixture
def sleeper():
    """A live process that is not a sims writer (an unrelated program)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.2)
    yield proc
    proc.kill()
    proc.wait()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_holder_is_named_and_a_second_lock_refused(tmp_path):
    with locks.RunLock(tmp_path, "sims atlas --preset ci"):
        with pytest.raises(store.RunDirError) as err:
            with locks.RunLock(tmp_path, "sims atlas --preset ci"):
                pass
    msg = str(err.value)
    assert f"process {os.getpid()}" in msg and "sims atlas --preset ci" in msg and "started 20" in msg
    assert not (tmp_path / "lock").exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    _lock(tmp_path, pid=_dead_pid(), start=dict(ticks=1))
    with locks.RunLock(tmp_path, "sims run"):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("procfs", [True, False], ids=["proc", "ps-fallback"])
def test_a_pid_reused_by_another_program_is_stale(tmp_path, sleeper, monkeypatch, procfs):
    """The lock names a live pid, but the process with that pid started after the lock was taken (or, with
    /proc, at another tick): another program got the pid, the lock is taken over."""
    if not procfs:
        monkeypatch.setattr(locks, "_proc_ticks", lambda pid: None)
    real = locks.process_start(sleeper.pid)
    assert real, "cannot read the start time of a live process"
    start = dict(ticks=real["ticks"] - 100) if procfs else {}
    _lock(tmp_path, pid=sleeper.pid, start=start, started=time.time() - 3600)
    with locks.RunLock(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("procfs", [True, False], ids=["proc", "ps-fallback"])
def test_a_live_process_holding_its_own_lock_is_respected(tmp_path, sleeper, monkeypatch, procfs):
    if not procfs:
        monkeypatch.setattr(locks, "_proc_ticks", lambda pid: None)
    _lock(tmp_path, pid=sleeper.pid, start=locks.process_start(sleeper.pid), started=time.time())
    with pytest.raises(store.RunDirError, match=f"in use by process {sleeper.pid}"):
        with locks.RunLock(tmp_path):
            pass
    assert json.loads((tmp_path / "lock").read_text())["pid"] == sleeper.pid  # left alone


def test_an_old_lock_without_start_time_of_pid_1_is_not_obeyed_forever(tmp_path, sleeper):
    """A lock written before start times were recorded ({pid, host}), whose pid now runs a program that started
    after the lock file was written: stale."""
    (tmp_path / "lock").write_text(json.dumps(dict(pid=sleeper.pid, host=socket.gethostname())))
    os.utime(tmp_path / "lock", (time.time() - 3600, time.time() - 3600))
    with locks.RunLock(tmp_path):
        pass
    assert not (tmp_path / "lock").exists()


def test_store_keeps_the_name():
    assert store.RunLock is locks.RunLock


HOLD = ("import sys, time\nfrom sims.locks import RunLock\nwith RunLock(sys.argv[1], 'sims sweep held-elsewhere'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n")


@pytest.mark.parametrize("command", [
    ["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16"],
    ["atlas", "--preset", "ci"],
    ["reproduce", "xu2024", "--preset", "ci"],
])
def test_every_writer_refuses_a_directory_another_process_holds(tmp_path, command, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(command + ["--out", str(out), "--device", "cpu", "--threads", "1", "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert f"in use by process {holder.pid}" in err[0] and "held-elsewhere" in err[0] and "started" in err[0]
        assert not (out / "runs").exists()
    finally:
        holder.kill()
        holder.wait()


def test_two_identical_sweeps_started_together(tmp_path):
    """Both start at once: one runs the sweep, the other is refused with exit 2; nothing is set aside."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "sims", "sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16",
           "--device", "cpu", "--threads", "1", "--quiet", "--out", str(out)]
    cmd += [a for kv in ("lc=false", "steps=200", "n=40", "d=400", "n_test=100") for a in ("--set", kv)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], done
    refused = done[[p.returncode for p in procs].index(2)][1]
    assert "in use by process" in refused and len(refused.strip().splitlines()) == 1
    assert not [p for p in (out / "runs").iterdir() if ".failed" in p.name]
    index = json.loads((out / "sweep.json").read_text())
    assert [g["status"] for g in index["groups"]] == ["completed", "completed"]
