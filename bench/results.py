"""Result records: one versioned JSON document per run, written atomically.

Schema (version 2), keys of a record:
  schema_version, run_id, created (UTC ISO 8601), status (ok | failed | diverged), error,
  config (RunConfig fields), config_hash, group_hash (config hash without the seed),
  environment (python, CPU model and flags, GPUs, framework versions, runtime settings
  with their origin, git commit), model (param counts, groups, weights loaded/dropped),
  curve (one dict per epoch), timing (StepTimer.summary(): compile, warm-up, steady
  state, data wait, contention), accuracy (final with its 95% Wilson interval, best,
  selected on validation), flags (collapsed runs), time_to_accuracy.
Version 1 (no group_hash, settings, contention or flags) is still read.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .errors import BenchError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # a record's "created" and "finished"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime(TIMESTAMP)


def record_filename(record: dict) -> str:
    c = record["config"]
    stamp = record["created"].replace(":", "").replace("-", "")
    # run_id = config hash + millisecond clock: two runs of one config never share a name
    return f"{stamp}_{c['backend']}_{c['experiment']}_{c['arm']}_{c['strategy']}_s{c['seed']}_{record['run_id']}.json"


def write_json_atomic(path: Path, data: dict) -> Path:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_new(path: Path, data: dict) -> Path:
    """Like ``write_json_atomic``, but never replaces a file: where ``path`` exists, the first free
    ``<stem>-1``, ``<stem>-2``, ... is taken (a hard link claims the name atomically)."""
    path = Path(path)
    tmp = write_json_atomic(path.with_name(f".{path.name}.{os.getpid()}.new"), data)
    try:
        for i in range(10_000):
            target = path if i == 0 else path.with_name(f"{path.stem}-{i}{path.suffix}")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
        raise BenchError(f"no free file name for {path}")
    finally:
        os.unlink(tmp)


def write_record(record: dict, out_dir: Path) -> Path:
    """Save one run record as its own file; never overwrites an existing record."""
    path = Path(out_dir) / record_filename(record)
    if path.exists():
        raise BenchError(f"record {path} already exists; refusing to overwrite")
    return write_json_atomic(path, record)


def read_record(path: Path) -> dict:
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BenchError(f"cannot read result record {path}: {e}") from None
    if not isinstance(rec, dict):
        raise BenchError(f"{path}: a result record is a JSON object, got {type(rec).__name__}")
    version = rec.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise BenchError(
            f"{path}: schema_version {version!r} is not supported (this bench reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); re-run the configuration or use the bench version that wrote it"
        )
    missing = [k for k in ("config", "config_hash", "status") if k not in rec]
    if missing or not isinstance(rec.get("config"), dict):
        raise BenchError(f"{path}: not a bench record (missing {', '.join(missing) or 'a config object'})")
    return rec


def record_files(paths) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.exists():
            files.append(p)
        else:
            raise BenchError(f"no such result file or directory: {p}")
    return files


def read_records(paths) -> tuple[list[dict], list[str]]:
    """Every readable record under ``paths``, and one line per file that could not be read:
    one truncated or foreign file never hides the others."""
    records, problems = [], []
    for f in record_files(paths):
        try:
            records.append(read_record(f))
        except BenchError as e:
            problems.append(str(e))
    return records, problems


def load_records(paths) -> list[dict]:
    """All records from files and directories (searched recursively for *.json); strict."""
    return [read_record(f) for f in record_files(paths)]
