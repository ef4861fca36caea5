"""One mechanism to start a ``python -m bench`` child process and never leave it behind.

Every framework runs in a child (``bench _exec`` for a run, ``bench _step`` for a speed
measurement), so a crash, a hang or an OOM kill costs one record, not a sweep. The child

* starts in its own session and process group, so everything it starts dies with it
  (``os.killpg``) on a time-out, an interrupt or any exception in the parent;
* asks the kernel to SIGKILL it when its parent dies (Linux ``PR_SET_PDEATHSIG``), so a
  parent killed with SIGKILL (or a Ray worker that dies) leaves no child training;
* gets an explicit environment (``backends.settings.child_env``) and the parent's
  standard output, its standard error going to a file the caller reads.

The CLI turns SIGTERM and SIGHUP into an exception in the parent (``bench/cli.py``), so
those reach the ``killpg`` below too.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.measure.timing import Phases

PR_SET_PDEATHSIG = 1
_libc = None


def _die_with_parent(parent: int):
    """``preexec_fn``: in the child, before ``exec``: SIGKILL when the parent thread exits."""
    def set_signal() -> None:
        if sys.platform.startswith("linux"):
            global _libc
            _libc = _libc or ctypes.CDLL(None, use_errno=True)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
    return set_signal


@contextmanager
def running_lock(cache_dir, key: str):
    """Hold ``<cache>/running/<key>.lock`` while a job of config hash ``key`` runs; yields its
    descriptor (pass it to the child: the lock then lives as long as the child does). A second
    sweep that reaches the same configuration (``--resume`` while an old child still trains)
    waits for it instead of running it twice beside it."""
    path = Path(cache_dir) / "running" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            print(f"waiting: configuration {key} is still running (pid {holder}); not starting it twice",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        os.close(fd)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_bench_child(args: list[str], env: dict, timeout: float | None, stderr, pass_fds=(),
                    python: str | None = None) -> int | None:
    """Run ``python -m bench ARGS`` to the end; its exit code, or None when it ran past
    ``timeout`` seconds (then it and its process group are killed). ``pass_fds``: descriptors
    the child keeps (a lock that must live exactly as long as the child). ``python``: another
    interpreter (a backend's own environment, ``bench.execute.environments``), which runs this
    checkout's code (first on its path) with that environment's packages."""
    env = dict(env, **{Phases.SPAWNED_AT: repr(time.time())})  # the child's startup time is recorded
    if python and python != sys.executable:
        here = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    proc = subprocess.Popen([python or sys.executable, "-m", "bench", *args], stderr=stderr, env=env,
                            pass_fds=tuple(pass_fds),
                            start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return None
    except BaseException:  # interrupted or terminated: never leave a framework running behind
        kill_group(proc)
        raise
