"""The suite's child processes (``python -m bench _exec|_step``) alive on this machine, from /proc."""
import os
import time
from pathlib import Path


SESSION = "BENCH_TEST_SESSION"  # set by the test session: its children inherit it, a user's sweep does not


def _of_this_session(entry: Path) -> bool:
    try:
        return f"{SESSION}={os.environ.get(SESSION)}".encode() in (entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def bench_children(marker: str = "", session_only: bool = False) -> list[tuple[int, str]]:
    """(pid, command line) of every live ``bench _exec``/``bench _step`` whose command line holds ``marker``;
    ``session_only``: only those started by this test session (never a sweep running beside the tests)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and ("bench _exec" in cmd or "bench _step" in cmd) and marker in cmd \
                and (not session_only or _of_this_session(entry)):
            out.append((int(entry.name), cmd[:200]))
    return out


def wait_for_none(marker: str, seconds: float = 10.0, session_only: bool = False) -> list[tuple[int, str]]:
    """Those still alive after ``seconds`` (a killed child may take a moment to go)."""
    deadline = time.time() + seconds
    while (alive := bench_children(marker, session_only)) and time.time() < deadline:
        time.sleep(0.2)
    return alive


def wait_for_some(marker: str, seconds: float = 60.0) -> list[tuple[int, str]]:
    deadline = time.time() + seconds
    while not (alive := bench_children(marker)) and time.time() < deadline:
        time.sleep(0.2)
    return alive
