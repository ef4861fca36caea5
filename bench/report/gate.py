"""``bench gate BASELINE CANDIDATE``: a regression gate that knows the machine's noise.

pytest-benchmark's ``--benchmark-compare-fail=median:25%`` compares two medians of steps
taken in one process each; on this machine processes of identical settings differ by up to
1.5x, so such a gate fails unchanged code and passes real slowdowns. Here the samples are
*processes* (each one process's median step), several per side, and a configuration
regresses only when the slowdown is both significant (one-sided Mann-Whitney U, SciPy's
exact test, ``alpha``) and at least ``factor`` (the ratio of the sides' medians): asv's
rule, ``bench.measure.stats.time_change``.

What is measured, per configuration present on both sides:

* ``bench overhead`` records (``--rounds N``: N processes per combination and loop):
  ``harness ms`` (the suite's train step), ``native ms`` (the framework's own loop: its
  speed, whatever the suite does) and ``harness/native`` (the paired ratio within each
  process, stable to a few percent: the gate for the suite's own overhead, ``--overhead-factor``);
* run records (``bench run``; each run is one process): ``step ms`` per configuration
  (every hyper-parameter but the seed), over its seeds.

Records of one configuration on one side pool their processes. Sides measured on different
CPUs or framework versions are named in the output: such a ratio compares machines as much
as code. The factors are also the history page's (``history.py``). Imports sit inside the
functions: the CLI reads this module's defaults when it builds its parser, in every child.
"""
from __future__ import annotations

from collections import defaultdict

from bench.plan.config import precision_of

FACTOR = 1.10           # asv's default: a slowdown under 10% is not gated, however significant
OVERHEAD_FACTOR = 1.03  # harness/native within a process is stable to ~3%
ALPHA = 0.05


def _overhead_name(spec: dict) -> str:
    return (f"{spec.get('backend')} {spec.get('model')} {spec.get('image_size')}px {spec.get('strategy')} "
            f"{precision_of(spec)} b{spec.get('batch_size')} {spec.get('device', 'cpu')}")


def samples(runs: list[dict], overhead: list[dict]) -> dict[tuple[str, str], dict]:
    """(configuration, measure) -> {"values": per-process samples, "machines": set}."""
    from .groups import clean_step_ms, config_name, machine_of
    out: dict[tuple[str, str], dict] = defaultdict(lambda: {"values": [], "machines": set()})

    def add(key: tuple[str, str], values, rec: dict) -> None:
        out[key]["values"].extend(float(v) for v in values)
        out[key]["machines"].add(machine_of(rec, versions=True))

    for rec in overhead:
        name = _overhead_name(rec.get("spec") or {})
        sides = {loop: rec.get(loop) or {} for loop in ("harness", "native")}
        for loop, side in sides.items():
            if side.get("round_medians_ms") and not side.get("contended"):  # contended: not the code's time
                add((name, f"{loop} ms"), side["round_medians_ms"], rec)
        if rec.get("round_ratios") and not any(side.get("contended") for side in sides.values()):
            add((name, "harness/native"), rec["round_ratios"], rec)
    for rec in runs:
        ms = clean_step_ms(rec)
        if ms is not None:
            add((config_name(rec), "step ms"), [ms], rec)
    return out


def gate(base: dict, cand: dict, factor: float = FACTOR, overhead_factor: float = OVERHEAD_FACTOR,
         alpha: float = ALPHA) -> list[dict]:
    """One verdict per (configuration, measure) on both sides."""
    import numpy as np

    from bench.measure.stats import smallest_p, time_change
    rows = []
    for key in sorted(set(base) & set(cand)):
        a, b = base[key]["values"], cand[key]["values"]
        if not a or not b:
            continue
        f = overhead_factor if key[1] == "harness/native" else factor
        got = time_change(a, b, f, alpha, alternative="greater")
        if smallest_p(len(a), len(b)) >= alpha:
            verdict = (f"cannot resolve: {len(a)} and {len(b)} processes (a one-sided U test needs, e.g., 3 and 4 "
                       f"to reach p < {alpha:g})")
        elif got["significant"] and got["beyond_factor"]:
            verdict = "REGRESSION"
        elif got["significant"]:
            verdict = f"slower, but within {f:g}x"
        elif got["beyond_factor"]:
            verdict = "slower beyond the factor, not significant"
        else:
            faster = time_change(b, a, f, alpha, alternative="greater")
            verdict = "faster" if faster["significant"] and faster["beyond_factor"] else "unchanged"
        rows.append({"configuration": key[0], "measure": key[1], "n": (len(a), len(b)),
                     "base": float(np.median(a)), "cand": float(np.median(b)), "ratio": got["ratio"], "p": got["p"],
                     "factor": f, "verdict": verdict,
                     "same_machine": base[key]["machines"] == cand[key]["machines"]})
    return rows


def render_gate(rows: list[dict], fmt: str = "terminal") -> str:
    from tabulate import tabulate

    from .format import tablefmt
    if not rows:
        return "no configuration was measured on both sides"
    body = [[r["configuration"], r["measure"], f"{r['n'][0]}/{r['n'][1]}",
             f"{r['base']:.3f}" if r["measure"] == "harness/native" else f"{r['base']:.1f}",
             f"{r['cand']:.3f}" if r["measure"] == "harness/native" else f"{r['cand']:.1f}",
             f"{r['ratio']:.3f}x", "-" if r["p"] is None else f"{r['p']:.4f}", f"{r['factor']:g}x", r["verdict"]
             + ("" if r["same_machine"] else " (DIFFERENT machine or versions)")] for r in rows]
    table = tabulate(body, headers=["configuration", "measure", "processes base/cand", "base median",
                                    "candidate median", "ratio", "p (U, one-sided)", "factor", "verdict"],
                     tablefmt=tablefmt(fmt), disable_numparse=True)
    bad = [r for r in rows if r["verdict"] == "REGRESSION"]
    summary = (f"{len(bad)} regression(s): " + "; ".join(f"{r['configuration']} {r['measure']} {r['ratio']:.2f}x"
                                                       for r in bad)) if bad else "no regression"
    return f"{table}\n\n{summary} (significant at p < alpha and beyond the factor; samples are processes)"
