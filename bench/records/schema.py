"""One check of a run record's shape, applied wherever records are read (report, compare,
resume, plots, studies): a record that fails it is named with the reason and skipped.

What is checked is what the readers use: the config (a valid ``RunConfig``), the hashes,
the status, and for an ok record its curve, accuracy, timing, environment and flags, with
every number finite. A record written by a later bench with more keys passes.
"""
from __future__ import annotations

import math

from bench.core.errors import BenchError
from bench.plan.config import RunConfig

NUMBER = (int, float)


class Invalid(ValueError):
    """What is wrong with a record, in one line."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise Invalid(what)


def _number(value, what: str, low: float | None = None, high: float | None = None) -> None:
    _expect(isinstance(value, NUMBER) and not isinstance(value, bool) and math.isfinite(value),
            f"{what} is {str(value)[:40]!r}, expected a finite number")
    _expect((low is None or value >= low) and (high is None or value <= high), f"{what} {value} is outside [{low}, {high}]")


def _count(value, what: str) -> None:
    _expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0, f"{what} is {str(value)[:40]!r}, "
            "expected a count")


def _curve(curve) -> None:
    _expect(isinstance(curve, list) and curve and all(isinstance(p, dict) for p in curve),
            "curve is not a non-empty list of epochs")
    for p in curve:
        _count(p.get("epoch"), "curve epoch")
        _number(p.get("cum_train_s"), "curve cum_train_s", 0)
        for split in ("eval", "val"):
            if f"{split}_acc" in p:
                _number(p[f"{split}_acc"], f"curve {split}_acc", 0, 1)
                _count(p.get(f"{split}_correct"), f"curve {split}_correct")
                _count(p.get(f"n_{split}"), f"curve n_{split}")
                _expect(p[f"n_{split}"] > 0, f"curve n_{split} is 0")


def _accuracy(acc, trial: bool) -> None:
    _expect(isinstance(acc, dict), "accuracy is not an object")
    if trial:
        val = acc.get("val")
        _expect(isinstance(val, dict), "a trial's accuracy has no validation score")
        _number(val.get("acc"), "accuracy.val.acc", 0, 1)
        _number(val.get("loss"), "accuracy.val.loss")
        return
    _number(acc.get("final"), "accuracy.final", 0, 1)
    ci = acc.get("final_ci95")
    if ci is not None:
        _expect(isinstance(ci, list) and len(ci) == 2, "accuracy.final_ci95 is not a pair")
        for v in ci:
            _number(v, "accuracy.final_ci95", 0, 1)
    if "best" in acc:
        _number(acc["best"], "accuracy.best", 0, 1)


def check_run_record(rec: dict) -> None:
    """Raise :class:`Invalid` saying what is wrong with ``rec`` (a run record already parsed)."""
    for key in ("config_hash", "status"):
        _expect(isinstance(rec.get(key), str), f"{key} is {str(rec.get(key))[:40]!r}, expected a string")
    config = rec.get("config")
    _expect(isinstance(config, dict), "config is not an object")
    for key in ("backend", "experiment", "arm", "strategy", "model"):
        _expect(isinstance(config.get(key), str), f"config.{key} is missing or not a string")
    _count(config.get("seed"), "config.seed")
    try:
        RunConfig.from_json(config)
    except (BenchError, TypeError, ValueError) as e:
        raise Invalid(f"its config is not a valid run configuration ({str(e)[:160]})") from None
    _expect(rec["status"] in ("ok", "failed", "diverged", "running"), f"status {rec['status'][:20]!r} is unknown")
    for key, kind in (("environment", dict), ("timing", dict), ("flags", list), ("model", dict), ("data", dict)):
        _expect(isinstance(rec.get(key, kind()), kind), f"{key} is a {type(rec.get(key)).__name__}, expected "
                f"a{'n object' if kind is dict else ' list'}")
    _expect(all(isinstance(f, dict) for f in rec.get("flags", [])), "flags holds something that is not an object")
    if rec["status"] == "ok":
        _curve(rec.get("curve"))
        _accuracy(rec.get("accuracy"), config.get("trial") is not None)
    elif rec["status"] in ("failed", "diverged"):
        _expect(isinstance(rec.get("error"), str), "a failed record says no error")
