"""Helpers for gates whose timing happens in a child process (one framework per process)."""
import itertools


def replay(benchmark, steps_ms: list[float]) -> None:
    """Give pytest-benchmark the step times a child measured: each round's duration is the
    difference of two calls of its timer, so a timer that replays them reproduces them."""
    clock = itertools.accumulate(d / 1e3 for ms in steps_ms for d in (0.0, ms))
    benchmark._timer = lambda: next(clock)
    benchmark.pedantic(lambda: None, rounds=len(steps_ms), iterations=1)
