"""Run one configuration in its own subprocess, so a crash, a hang or an OOM kill
of one backend becomes a failed record and the sweep goes on.

The child is ``python -m bench _exec``; it writes its own record atomically.
If it dies without one, the parent writes a failed record naming the exit code
or signal, the time limit, and the tail of the child's stderr.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .config import RunConfig
from .results import read_record, utc_now, write_record

STDERR_TAIL = 2000  # characters of the child's stderr kept in a failed record


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"child process died from signal {name}{hint}"
    return f"child process exited with code {code} without writing a record"


def execute_isolated(config: RunConfig, out_dir: Path, *, timeout: float | None = None,
                     cache_dir: Path | None = None, data_root: Path | None = None,
                     progress: bool = False, skip_bad_images: bool = False) -> dict:
    from .runner import new_record

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        result_file = Path(tmp) / "result.json"
        stderr_file = Path(tmp) / "stderr.txt"
        cmd = [sys.executable, "-m", "bench", "_exec", json.dumps(config.to_json()),
               "--out", str(out_dir), "--result-file", str(result_file)]
        cmd += ["--cache-dir", str(cache_dir)] if cache_dir else []
        cmd += ["--data-root", str(data_root)] if data_root else []
        cmd += [] if progress else ["--no-progress"]
        cmd += ["--skip-bad-images"] if skip_bad_images else []
        with open(stderr_file, "w") as err:
            proc = subprocess.Popen(cmd, stderr=err, start_new_session=True)
            try:
                code = proc.wait(timeout=timeout)
                reason = None if result_file.exists() else _describe_exit(code)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                reason = f"timed out after {timeout:g} s (--timeout); child killed"
        if result_file.exists() and reason is None:
            outcome = json.loads(result_file.read_text())
            if outcome.get("user_error"):
                from .errors import BenchError
                raise BenchError(outcome["user_error"])
            return read_record(Path(outcome["path"])) | {"path": outcome["path"]}
        tail = stderr_file.read_text(errors="replace")[-STDERR_TAIL:]
    record = new_record(config)
    record.update(status="failed", error=reason, stderr_tail=tail, finished=utc_now())
    record["path"] = str(write_record(record, out_dir))
    return record
