"""Run one job in its own subprocess, so a crash, a hang or an OOM kill of one
backend becomes a failed record and the sweep goes on.

The child is ``python -m bench _exec``; it writes its own record atomically.
If it dies without one, the parent writes a failed record naming the exit code
or signal, the time limit, and the tail of the child's stderr. The child's
environment is built explicitly for its backend (``backends/settings.py``): nothing
another framework set, in ``os.environ`` or only in the C environment, reaches it.
"""
from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

from backends.settings import child_env
from bench.core.errors import BenchError
from bench.records.store import failed_record, read_record, save_record

from .child import run_bench_child, running_lock
from .environments import interpreter

STDERR_TAIL = 2000  # characters of the child's stderr kept in a failed record


def describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"child process died from signal {name}{hint}"
    return f"child process exited with code {code} without writing a record"


def child_args(job, opts, out_dir: Path, result_file: Path) -> list[str]:
    cmd = ["_exec", json.dumps(job.config.to_json()),
           "--out", str(out_dir), "--result-file", str(result_file),
           "--cache-dir", str(opts.cache_dir), "--data-root", str(opts.data_root)]
    if job.weights:  # a pretrain step writes this canonical file, its arms read it
        cmd += ["--save-weights" if job.is_pretrain else "--pretrained-weights", str(job.weights)]
    cmd += [] if opts.progress else ["--no-progress"]
    cmd += ["--skip-bad-images"] if opts.skip_bad_images else []
    cmd += ["--packed"] if opts.packed else []
    return cmd


def run_child(job, opts, out_dir: Path, settings_from: dict | None = None,
              python: str | None = None) -> tuple[dict | None, str | None, str]:
    """Run ``_exec`` for ``job``; (outcome written by the child or None, failure reason, stderr tail).
    ``settings_from``: the user's environment to take runtime settings from (Ray workers); ``python``:
    the interpreter (a Ray runtime environment's), instead of the backend's environment here."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        result_file, stderr_file = Path(tmp) / "result.json", Path(tmp) / "stderr.txt"
        env = child_env(job.config.backend, settings_from=settings_from)
        timeout = opts.timeout or job.config.default_timeout_s()
        try:  # its own environment, if any (on a Ray node: under the driver's BENCH_ENV_ROOT)
            python = python or interpreter(job.config.backend, job.config.framework_version, settings_from)
        except BenchError as e:  # this node lacks it: a failed record naming the fix
            return None, str(e), ""
        with open(stderr_file, "w") as err, running_lock(opts.cache_dir, job.key) as lock:
            code = run_bench_child(child_args(job, opts, out_dir, result_file), env, timeout, err, pass_fds=(lock,),
                                   python=python)
        if code is None:
            limit = "--timeout" if opts.timeout else "the default from the job's budget; --timeout to change it"
            reason = f"timed out after {timeout:g} s ({limit}); child killed"
        else:
            reason = None if result_file.exists() else describe_exit(code)
        outcome = json.loads(result_file.read_text()) if result_file.exists() and reason is None else None
        return outcome, reason, stderr_file.read_text(errors="replace")[-STDERR_TAIL:]


def execute_isolated(job, opts) -> dict:
    """The job's record: the child's own, or a failed one saying how the child died."""
    out_dir = Path(opts.out)
    outcome, reason, tail = run_child(job, opts, out_dir)
    if outcome is not None:
        return read_record(Path(outcome["path"])) | {"path": outcome["path"]}
    return save_record(failed_record(job.config, reason, stderr_tail=tail), out_dir)
