"""Result records: one versioned JSON document per run, written atomically.

One builder (``new_record``, ``failed_record``), one loader (``read_records``) and one
way to name and write a file, whatever wrote the record (the runner, an isolated
child's parent, the Ray driver) and whatever reads it (report, compare, resume, plots).

Schema (version 2), keys of a run record:
  schema_version, run_id, created and finished (UTC, ``TIMESTAMP``), status (ok | failed |
  diverged), error, config (RunConfig fields), config_hash, group_hash (config hash without
  the seed), environment (python, CPU model and flags, GPUs, framework versions, runtime
  settings with their origin, git commit), model (param counts, groups, weights
  loaded/dropped), curve (one dict per epoch), timing (StepTimer.summary(): compile,
  warm-up, steady state, data wait, contention), accuracy (final with its 95% Wilson
  interval, best, selected on validation), flags (collapsed runs), time_to_accuracy.
Version 1 (no group_hash, settings, contention or flags) is still read. Records of other kinds
(study, overhead, tune, profile, peak) carry a ``kind`` and are read with ``kind=``; every kind is
a class in ``bench.records.kinds`` whose ``from_json`` is the check a record passes when read.
"""
from __future__ import annotations

import json
import math
import os
import stat
import time
from datetime import datetime
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.files import atomic_path

from .kinds import KINDS
from .schema import READABLE_VERSIONS, SCHEMA_VERSION, TIMESTAMP, Invalid, utc_now  # noqa: F401 (re-exported)

RUN = "run"                      # the kind of a training run's record (it has no "kind" key)


class OtherKind(BenchError):
    """A readable record of another kind than the one asked for."""


def parse_time(text) -> datetime | None:
    """A record's timestamp, or None where it is missing or malformed."""
    try:
        return datetime.strptime(text, TIMESTAMP)
    except (TypeError, ValueError):
        return None


def file_stamp(created: str) -> str:
    """``created`` as it opens a record's file name: ``20261123T090616Z``."""
    return created.replace(":", "").replace("-", "")


def new_record(config) -> dict:
    """A run record in state ``running``; ``config`` is a ``RunConfig``."""
    return {"schema_version": SCHEMA_VERSION, "run_id": f"{config.config_hash()}-{int(time.time() * 1e3)}",
            "created": utc_now(), "status": "running", "error": None,
            "config": config.to_json(), "config_hash": config.config_hash(), "group_hash": config.group_hash(),
            "environment": {}, "model": {}, "data": {}, "curve": [], "timing": {},
            "accuracy": {}, "flags": [], "time_to_accuracy": {}}


def failed_record(config, reason: str, **extra) -> dict:
    """The record of a job that failed outside its own process or never ran (its child
    died, its pretrain step failed, its Ray worker was lost): an ok record minus results."""
    record = new_record(config)
    record.update(status="failed", error=reason, finished=utc_now(), **extra)
    return record


def record_filename(record: dict) -> str:
    c = record["config"]
    # run_id = config hash + millisecond clock: two runs of one config never share a name
    return (f"{file_stamp(record['created'])}_{c['backend']}_{c['experiment']}_{c['arm']}_{c['strategy']}"
            f"_s{c['seed']}_{record['run_id']}.json")


def write_json_atomic(path: Path, data: dict) -> Path:
    """Write to a temp file in the same directory, fsync, then rename over ``path``. Non-finite
    numbers are not JSON: they are written as null (records say where, ``finite_json``)."""
    path = Path(path)
    text = json.dumps(finite_json(data), indent=1, sort_keys=True, default=str, allow_nan=False)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def finite_json(value):
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


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


def save_record(record: dict, out_dir: Path) -> dict:
    """Write ``record`` into ``out_dir`` and note where (its ``path``); returns it."""
    record.pop("path", None)
    record["path"] = str(write_record(record, out_dir))
    return record


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


MAX_RECORD_BYTES = 4 << 20  # 140x the largest record the suite writes (28 KB); JSON in memory takes ~50x its bytes


def read_json_file(path: Path, what: str = "result record"):
    """A JSON file from elsewhere, parsed: a regular file (a FIFO or a device would block or never end)
    of at most ``MAX_RECORD_BYTES``, standard JSON only (no NaN or Infinity); BenchError naming it otherwise."""
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("not a regular file")
            data = f.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(f"larger than {MAX_RECORD_BYTES >> 20} MiB")
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (OSError, ValueError, RecursionError) as e:
        raise BenchError(f"cannot read {what} {path}: {type(e).__name__}: {str(e)[:200]}") from None


def read_record(path: Path, kind: str = RUN) -> dict:
    """One record of ``kind`` (``run``, ``study``, ``overhead``, ``tune``, ``profile``, ``peak``), parsed
    and checked by its class (``bench.records.kinds``); BenchError naming the file and the reason otherwise."""
    rec = read_json_file(path)
    if not isinstance(rec, dict):
        raise BenchError(f"{path}: a result record is a JSON object, got {type(rec).__name__}")
    version = rec.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise BenchError(
            f"{path}: schema_version {version!r} is not supported (this bench reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); re-run the configuration or use the bench version that wrote it"
        )
    if rec.get("kind", RUN) != kind:
        raise OtherKind(f"{path}: a {rec.get('kind', RUN)!r} record, not a {kind!r} record")
    if kind == RUN:
        missing = [k for k in ("config", "config_hash", "status") if k not in rec]
        if missing or not isinstance(rec.get("config"), dict):
            raise BenchError(f"{path}: not a bench record (missing {', '.join(missing) or 'a config object'})")
    if kind not in KINDS:
        raise BenchError(f"{path}: no record kind {kind!r} (kinds: {', '.join(KINDS)})")
    try:
        KINDS[kind].from_json(rec)
    except Invalid as e:
        raise BenchError(f"{path}: a malformed {kind} record: {e}") from None
    return rec


def record_files(paths, pattern: str = "*.json") -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob(pattern)))
        elif p.exists():
            files.append(p)
        else:
            raise BenchError(f"no such result file or directory: {p}")
    return files


def read_records(paths, kind: str = RUN, with_paths: bool = False) -> tuple[list, list[str]]:
    """Every readable record of ``kind`` under ``paths``, and one line per file that could not
    be read: one truncated or foreign file never hides the others. Files holding records of
    another kind are passed over silently (speed and run records may share a folder).
    ``with_paths``: (file, record) pairs instead of records."""
    records, problems = [], []
    for f in record_files(paths):
        try:
            rec = read_record(f, kind)
            records.append((f, rec) if with_paths else rec)
        except OtherKind:
            continue
        except BenchError as e:
            problems.append(str(e))
    return records, problems
