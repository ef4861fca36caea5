"""One check of a run record's shape, applied wherever records are read (report, compare,
resume, plots, studies): a record that fails it is named with the reason and skipped.

What is checked is what the readers use: the config (a valid ``RunConfig``), the hashes,
the status, and for an ok record its curve, accuracy, timing, environment and flags, with
every number finite. A record written by a later bench with more keys passes.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from bench.core.errors import BenchError
from bench.plan.config import RunConfig

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # a record's "created" and "finished"
NUMBER = (int, float)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime(TIMESTAMP)


class Invalid(ValueError):
    """What is wrong with a record, in one line."""


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise Invalid(what)


def number(value, what: str, low: float | None = None, high: float | None = None) -> float:
    expect(isinstance(value, NUMBER) and not isinstance(value, bool) and math.isfinite(value),
           f"{what} is {str(value)[:40]!r}, expected a finite number")
    expect((low is None or value >= low) and (high is None or value <= high), f"{what} {value} is outside [{low}, {high}]")
    return float(value)


def count(value, what: str) -> int:
    expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0, f"{what} is {str(value)[:40]!r}, "
           "expected a count")
    return value




def _curve(curve) -> None:
    expect(isinstance(curve, list) and curve and all(isinstance(p, dict) for p in curve),
            "curve is not a non-empty list of epochs")
    for p in curve:
        count(p.get("epoch"), "curve epoch")
        number(p.get("cum_train_s"), "curve cum_train_s", 0)
        for split in ("eval", "val"):
            if f"{split}_acc" in p:
                number(p[f"{split}_acc"], f"curve {split}_acc", 0, 1)
                count(p.get(f"{split}_correct"), f"curve {split}_correct")
                count(p.get(f"n_{split}"), f"curve n_{split}")
                expect(p[f"n_{split}"] > 0, f"curve n_{split} is 0")


def _accuracy(acc, trial: bool, curve=None) -> None:
    expect(isinstance(acc, dict), "accuracy is not an object")
    if trial:
        val = acc.get("val")
        expect(isinstance(val, dict), "a trial's accuracy has no validation score")
        number(val.get("acc"), "accuracy.val.acc", 0, 1)
        number(val.get("loss"), "accuracy.val.loss")
        if curve and isinstance(curve[-1], dict) and "val_acc" in curve[-1]:  # the score is the curve's end
            last = curve[-1]
            expect(last.get("val_acc") == val["acc"] and last.get("val_loss") == val.get("loss")
                   and last.get("n_val", val.get("n")) == val.get("n"),
                   "accuracy.val does not match the curve's last validation point")
            if last.get("val_correct") is not None and last.get("n_val"):
                expect(abs(last["val_correct"] / last["n_val"] - val["acc"]) < 1e-9,
                       "accuracy.val.acc is not the curve's val_correct / n_val")
        return
    number(acc.get("final"), "accuracy.final", 0, 1)
    ci = acc.get("final_ci95")
    if ci is not None:
        expect(isinstance(ci, list) and len(ci) == 2, "accuracy.final_ci95 is not a pair")
        for v in ci:
            number(v, "accuracy.final_ci95", 0, 1)
    if "best" in acc:
        number(acc["best"], "accuracy.best", 0, 1)


def text(value, what: str) -> str:
    expect(isinstance(value, str), f"{what} is {str(value)[:40]!r}, expected a string")
    return value


def obj(value, what: str) -> dict:
    expect(isinstance(value, dict), f"{what} is a {type(value).__name__}, expected an object")
    return value


def items(value, what: str) -> list:
    expect(isinstance(value, list), f"{what} is a {type(value).__name__}, expected a list")
    return value


def numbers(value, what: str, low: float | None = None) -> list[float]:
    return [number(v, what, low) for v in items(value, what)]


def _optional_number(parent: dict, key: str, what: str, low: float | None = 0, high: float | None = None) -> None:
    if parent.get(key) is not None:
        number(parent[key], what, low, high)


def _section(rec: dict, key: str) -> dict:
    return obj(rec.get(key) or {}, key)


def _measurements(rec: dict) -> None:
    """The nested numbers the tables read: step times, compile time, memory, time to target, FLOPs."""
    timing = _section(rec, "timing")
    steady = timing.get("steady", {})
    expect(isinstance(steady, dict), "timing.steady is not an object")
    for key in ("median_ms", "p90_ms", "iqr_ms", "img_per_s"):
        _optional_number(steady, key, f"timing.steady.{key}")
    data = timing.get("data", {})
    expect(isinstance(data, dict), "timing.data is not an object")
    _optional_number(data, "median_ms", "timing.data.median_ms")
    for key in ("compile_ms", "peak_rss_mb", "device_peak_mb", "wall_s"):
        _optional_number(timing, key, f"timing.{key}")
    expect(isinstance(timing.get("contention", {}), dict), "timing.contention is not an object")
    tta = _section(rec, "time_to_accuracy")
    _optional_number(tta, "train_s", "time_to_accuracy.train_s")
    _optional_number(tta, "target", "time_to_accuracy.target", 0, 1)
    flops = _section(rec, "model").get("flops") or {}
    expect(isinstance(flops, dict), "model.flops is not an object")
    _optional_number(flops, "per_step", "model.flops.per_step")


def check_run_record(rec: dict) -> None:
    """Raise :class:`Invalid` saying what is wrong with ``rec`` (a run record already parsed)."""
    for key in ("config_hash", "status"):
        expect(isinstance(rec.get(key), str), f"{key} is {str(rec.get(key))[:40]!r}, expected a string")
    config = rec.get("config")
    expect(isinstance(config, dict), "config is not an object")
    for key in ("backend", "experiment", "arm", "strategy", "model"):
        expect(isinstance(config.get(key), str), f"config.{key} is missing or not a string")
    count(config.get("seed"), "config.seed")
    try:
        recomputed = RunConfig.from_json(config).config_hash()
    except (BenchError, TypeError, ValueError) as e:
        raise Invalid(f"its config is not a valid run configuration ({str(e)[:160]})") from None
    expect(rec.get("config_hash") == recomputed, f"config_hash {str(rec.get('config_hash'))[:20]!r} is not its "
           f"config's ({recomputed}): the config was changed after the run")
    from architectures import get_spec
    try:
        get_spec(config["model"])  # the tables read the architecture's spec (its size, its stages)
    except BenchError as e:
        raise Invalid(str(e)[:200]) from None
    if "group_hash" in rec:  # what the tables group by: its config's too
        expect(rec["group_hash"] == RunConfig.from_json(config).group_hash(),
               f"group_hash {str(rec['group_hash'])[:20]!r} is not its config's")
    expect(rec["status"] in ("ok", "failed", "diverged", "running"), f"status {rec['status'][:20]!r} is unknown")
    for key, kind in (("environment", dict), ("timing", dict), ("flags", list), ("model", dict), ("data", dict)):
        expect(isinstance(rec.get(key, kind()), kind), f"{key} is a {type(rec.get(key)).__name__}, expected "
                f"a{'n object' if kind is dict else ' list'}")
    for i, flag in enumerate(rec.get("flags", [])):
        obj(flag, f"flags[{i}]")
        text(flag.get("flag"), f"flags[{i}].flag")
        text(flag.get("why"), f"flags[{i}].why")
    if rec["status"] == "ok":
        _curve(rec.get("curve"))
        _accuracy(rec.get("accuracy"), config.get("trial") is not None, rec.get("curve"))
        _measurements(rec)
    elif rec["status"] in ("failed", "diverged"):
        expect(isinstance(rec.get("error"), str), "a failed record says no error")
