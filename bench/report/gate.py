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

from bench.plan.config import precision_of

FACTOR = 1.10           # asv's default: a slowdown under 10% is not gated, however significant
OVERHEAD_FACTOR = 1.03  # harness/native within a process is stable to ~3%
MEMORY_FACTOR = 1.05    # a process's peak resident set varies by well under 1% between processes here
ALPHA = 0.05
RSS = "peak RSS MiB"
# pytest-benchmark's ``extra_info`` key under which a benchmark keeps its per-process samples
# (``bench.report.pytest_gate.time_processes``): {"step_ms": [...], "peak_rss_mb": [...], "contended": [...],
# "machine": "...", optionally "harness_native": [...]}, one entry per process.
PROCESSES = "bench_processes"


def _overhead_name(spec: dict) -> str:
    return (f"{spec.get('backend')} {spec.get('model')} {spec.get('image_size')}px {spec.get('strategy')} "
            f"{precision_of(spec)} b{spec.get('batch_size')} {spec.get('device', 'cpu')}")


class Samples(dict):
    """(configuration, measure) -> {"values": per-process samples, "machines": set, "contended": count}."""

    def __init__(self):
        super().__init__()
        self.ungated: list[str] = []  # pytest benchmarks timed in one process only: no process samples

    def __missing__(self, key):
        self[key] = {"values": [], "machines": set(), "contended": 0}
        return self[key]

    def add(self, key: tuple[str, str], values, machine: str) -> None:
        self[key]["values"].extend(float(v) for v in values)
        self[key]["machines"].add(machine)

    def left_out(self, key: tuple[str, str], n: int) -> None:
        self[key]["contended"] += n


def factor_of(measure: str, factor: float, overhead_factor: float, memory_factor: float) -> float:
    return overhead_factor if measure == "harness/native" else memory_factor if measure.endswith(RSS) else factor


def samples(runs: list[dict], overhead: list[dict]) -> Samples:
    """Per-process samples of run and overhead records; contended processes are counted, not pooled."""
    from .groups import busy, clean_step_ms, config_name, machine_of
    out = Samples()
    for rec in overhead:
        spec = rec.get("spec") or {}
        name, machine = _overhead_name(spec), machine_of(rec, versions=True)
        sides = {loop: rec.get(loop) or {} for loop in ("harness", "native")}
        for loop, side in sides.items():
            rounds = side.get("round_medians_ms") or []
            if side.get("contended"):  # contended: not the code's time
                out.left_out((name, f"{loop} ms"), len(rounds))
            elif rounds:
                out.add((name, f"{loop} ms"), rounds, machine)
            peaks = [m["peak_rss_mb"] for m in side.get("memory") or [] if m.get("peak_rss_mb") is not None]
            if peaks and (loop == "harness" or spec.get("design") != "interleaved"):  # interleaved: one process
                out.add((name, RSS if spec.get("design") == "interleaved" else f"{loop} {RSS}"), peaks, machine)
        if any(side.get("contended") for side in sides.values()):
            out.left_out((name, "harness/native"), len(rec.get("round_ratios") or []))
        elif rec.get("round_ratios"):
            out.add((name, "harness/native"), rec["round_ratios"], machine)
    for rec in runs:
        name, machine = config_name(rec), machine_of(rec, versions=True)
        ms = clean_step_ms(rec)
        if ms is not None:
            out.add((name, "step ms"), [ms], machine)
        elif busy(rec):  # timed while the CPU was busy: counted, not pooled (a packed run has no time to gate)
            out.left_out((name, "step ms"), 1)
        peak = (rec.get("timing") or {}).get("peak_rss_mb")
        if rec.get("status") == "ok" and peak is not None and (rec.get("config") or {}).get("arm") != "pretrain":
            out.add((name, RSS), [peak], machine)
    return out


def pytest_samples(doc, source: str) -> Samples:
    """Per-process samples of a pytest-benchmark JSON (``--benchmark-autosave``, ``--benchmark-json``):
    each benchmark that kept them in ``extra_info`` (``PROCESSES``). Benchmarks timed in one process
    only have no process samples and are not gated (``ungated``)."""
    from bench.core.errors import BenchError
    from bench.records.schema import Invalid, items, number, obj, text
    out = Samples()
    try:
        doc = obj(doc, "the file")
        for i, bench in enumerate(items(doc.get("benchmarks"), "benchmarks")):
            where = f"benchmarks[{i}]"
            bench = obj(bench, where)
            name = text(bench.get("fullname"), f"{where}.fullname")
            got = obj(bench.get("extra_info") or {}, f"{where}.extra_info").get(PROCESSES)
            if got is None:
                out.ungated.append(name)
                continue
            got = obj(got, f"{where}.extra_info.{PROCESSES}")
            label = text(got.get("machine"), f"{where}.extra_info.{PROCESSES}.machine")

            def per_process(key: str, required: bool = False) -> list[float]:
                what = f"{where}.extra_info.{PROCESSES}.{key}"
                values = got.get(key) if required else got.get(key) or []
                return [number(v, what, 0) for v in items(values, what)]

            step = per_process("step_ms", required=True)
            contended = items(got.get("contended") or [False] * len(step), f"{where}...contended")
            if len(contended) != len(step) or not all(isinstance(c, bool) for c in contended):
                raise Invalid(f"{where}.extra_info.{PROCESSES}.contended is not one true/false per process")

            def keep(measure: str, values: list[float]) -> None:
                """A time measured per process: contended processes counted, not pooled."""
                clean = [v for v, busy in zip(values, contended) if not busy]
                if clean:
                    out.add((name, measure), clean, label)
                if values:
                    out.left_out((name, measure), len(values) - len(clean))

            keep("step ms", step)
            ratios = per_process("harness_native")
            if ratios and len(ratios) != len(step):
                raise Invalid(f"{where}.extra_info.{PROCESSES}.harness_native is not one ratio per process")
            keep("harness/native", ratios)
            rss = per_process("peak_rss_mb")
            if rss:  # memory: another process's CPU use does not change it
                out.add((name, RSS), rss, label)
    except Invalid as e:
        raise BenchError(f"{source}: not a pytest-benchmark result with per-process samples: {e}") from None
    return out


def gate(base: dict, cand: dict, factor: float = FACTOR, overhead_factor: float = OVERHEAD_FACTOR,
         alpha: float = ALPHA, memory_factor: float = MEMORY_FACTOR) -> list[dict]:
    """One verdict per (configuration, measure) of the baseline; one measured only in the baseline
    is "MISSING in candidate" (a gate never passes what it cannot see)."""
    import numpy as np

    from bench.measure.stats import smallest_p, time_change
    rows = []
    for key in sorted(set(base) | set(cand)):
        a = base[key]["values"] if key in base else []
        b = cand[key]["values"] if key in cand else []
        if not a:
            continue  # new in the candidate: nothing to compare with
        f = factor_of(key[1], factor, overhead_factor, memory_factor)
        row = {"configuration": key[0], "measure": key[1], "n": (len(a), len(b)), "base": float(np.median(a)),
               "cand": float(np.median(b)) if b else None, "ratio": None, "p": None, "factor": f,
               "left_out": (base[key]["contended"], cand[key]["contended"] if key in cand else 0),
               "same_machine": key in cand and base[key]["machines"] == cand[key]["machines"]}
        if not b:
            busy = row["left_out"][1]
            rows.append(row | {"same_machine": True, "verdict": MISSING + (
                f": its {busy} process(es) were timed while the CPU was busy" if busy else "")})
            continue
        got = time_change(a, b, f, alpha, alternative="greater")
        if smallest_p(len(a), len(b)) >= alpha:
            verdict = (f"{CANNOT} {len(a)} and {len(b)} processes (a one-sided U test needs, e.g., 3 and 4 "
                       f"to reach p < {alpha:g})")
        elif got["significant"] and got["beyond_factor"]:
            verdict = REGRESSION
        elif got["significant"]:
            verdict = f"slower, but within {f:g}x"
        elif got["beyond_factor"]:
            verdict = "slower beyond the factor, not significant"
        else:
            faster = time_change(b, a, f, alpha, alternative="greater")
            verdict = "faster" if faster["significant"] and faster["beyond_factor"] else "unchanged"
        rows.append(row | {"ratio": got["ratio"], "p": got["p"], "verdict": verdict})
    return rows


REGRESSION, MISSING, CANNOT = "REGRESSION", "MISSING in candidate", "cannot resolve:"
# ``bench gate``'s exit status, worst first: what failed decides (docs/site-and-gates.md).
EXIT = {REGRESSION: 1, MISSING: 4, CANNOT: 3}


def exit_status(rows: list[dict]) -> int:
    """0 when every configuration was measured on both sides, resolved, and did not regress."""
    for verdict, code in EXIT.items():
        if any(r["verdict"].startswith(verdict) for r in rows):
            return code
    return 0


def render_gate(rows: list[dict], fmt: str = "terminal") -> str:
    from tabulate import tabulate

    from .format import tablefmt
    if not rows:
        return "no configuration was measured in the baseline"

    def value(r: dict, side: str) -> str:
        v = r[side]
        return "-" if v is None else f"{v:.3f}" if r["measure"] == "harness/native" else f"{v:.1f}"

    body = [[r["configuration"], r["measure"], f"{r['n'][0]}/{r['n'][1]}"
             + (f" (+{r['left_out'][0]}/{r['left_out'][1]} contended, left out)" if any(r["left_out"]) else ""),
             value(r, "base"), value(r, "cand"), "-" if r["ratio"] is None else f"{r['ratio']:.3f}x",
             "-" if r["p"] is None else f"{r['p']:.4f}", f"{r['factor']:g}x",
             r["verdict"] + ("" if r["same_machine"] else " (DIFFERENT machine or versions)")] for r in rows]
    table = tabulate(body, headers=["configuration", "measure", "processes base/cand", "base median",
                                    "candidate median", "ratio", "p (U, one-sided)", "factor", "verdict"],
                     tablefmt=tablefmt(fmt), disable_numparse=True)
    lines = []
    for verdict, what in ((REGRESSION, "regression(s)"), (MISSING, "measured in the baseline only"),
                          (CANNOT, "cannot be resolved with so few processes")):
        bad = [r for r in rows if r["verdict"].startswith(verdict)]
        if bad:
            lines.append(f"{len(bad)} {what}: " + "; ".join(
                f"{r['configuration']} {r['measure']}" + (f" {r['ratio']:.2f}x" if r["ratio"] else "") for r in bad))
    contended = sum(r["left_out"][1] for r in rows)
    if contended:
        lines.append(f"{contended} candidate sample(s) of processes timed while the CPU was busy were left out (see the table)")
    summary = "\n".join(lines) if lines else "no regression"
    codes = ", ".join(f"{code} {verdict.rstrip(':')}" for verdict, code in EXIT.items())
    return (f"{table}\n\n{summary}\n(a regression: significant at p < alpha and beyond the factor; samples are "
            f"processes; exit status {codes})")
