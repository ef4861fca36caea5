"""Result records: one versioned JSON document per run, written atomically.

Schema (version 1), keys of a record:
  schema_version, run_id, created (UTC ISO 8601), status (ok | failed | diverged), error,
  config (RunConfig fields), config_hash, environment, model (param counts, groups,
  weights loaded/dropped), curve (one dict per epoch), timing (StepTimer.summary()),
  accuracy (final, best, best_epoch, selected_on, eval_split, n_eval, ci95),
  time_to_accuracy (target, train_s, epoch or null).
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .errors import BenchError

SCHEMA_VERSION = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    version = rec.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BenchError(
            f"{path}: schema_version {version!r} is not supported (this bench reads {SCHEMA_VERSION}); "
            "re-run the configuration or use the bench version that wrote it"
        )
    return rec


def load_records(paths) -> list[dict]:
    """All records from files and directories (searched recursively for *.json)."""
    records = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.rglob("*.json"))
        elif p.exists():
            files = [p]
        else:
            raise BenchError(f"no such result file or directory: {p}")
        records.extend(read_record(f) for f in files)
    return records
