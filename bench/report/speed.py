"""Tables of speed records (``bench overhead``, ``bench tune``), from the records alone.

Records of one combination (overhead: machine, design, backend, model, size, strategy,
precision, batch, steps; tune: backend, strategy, batch) pool their rounds, so a table
shows every round ever published and never picks one record over another; records of
different machines never pool, and each machine gets its own table.
"""
from __future__ import annotations

import json

import numpy as np
from tabulate import tabulate

from bench.speed.overhead import ratio_of
from bench.speed.step import LOOPS

from bench.measure.peak import best_measured
from bench.plan.config import precision_of

from .format import generated_header, tablefmt
from .groups import machine_of

OVERHEAD_HOW = (
    "Per round, the median steady-state step of the harness's `Model.train_step` over that of the "
    "framework's own reference loop (its own idiom, sharing no code with the harness since records of reference `independent`; same network since `independent, same network`, same update since `independent, same network and update`; batch 16, one input, and the optimizer of the architecture's recipe, SGD in records that name none); harness/native: the median "
    "of the rounds' ratios, `per round`: their range; native and harness ms: the median of the rounds' "
    "medians. Records of one combination pool their rounds. Design `interleaved`: both loops in one "
    "process, alternating step by step; `processes`: each loop in its own process (see docs/speed.md, "
    "Fair speed).")
TUNE_HOW = (
    "Each cell: the median over its processes of each process's median steady-state harness train "
    "step, (ratio to the defaults' row), [range of the processes' medians, their number]; `†`: other "
    "processes used the CPU meanwhile. One setting varies at a time from the backend's defaults "
    "(first row); each measurement is its own process, and on our machine the same setting's process "
    "medians vary by tens of percent, so read a ratio against its range.")


SHARED = "shared the harness's plan"  # what records from before the independent reference loop measured


def _reference(rec: dict) -> str:
    """What the reference loop was: ``independent`` (bench.speed.step.REFERENCE), or for older records
    one that reused the harness's plan application and always built SGD."""
    return rec["spec"].get("reference", SHARED)


def _design(rec: dict) -> str:
    return rec["spec"].get("design", "processes")


def _precision(rec: dict) -> str:
    return precision_of(rec["spec"])


def merge_rounds(records: list[dict]) -> list[dict]:
    """One entry per measured combination (machine, design, backend, model, size, strategy,
    precision, batch, steps): records of the same combination, e.g. a re-measurement with more
    rounds, pool their rounds, so a table shows every round ever published and never picks one
    record over another. Rounds of different machines never pool."""
    merged: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: r.get("created", "")):
        spec = r["spec"] | {"design": _design(r), "precision": _precision(r)}
        machine = machine_of(r) if r.get("environment") else "a machine not recorded (every round failed)"
        key = json.dumps({"machine": machine} | {k: v for k, v in spec.items() if k not in ("rounds", "min_rounds", "spread")},
                         sort_keys=True)
        m = merged.setdefault(key, {"spec": spec, "machine": machine, "round_ratios": [], "created": [],
                                    "commits": set(),
                                    **{loop: {"round_medians_ms": [], "errors": [], "contended": False,
                                              "memory": []} for loop in LOOPS}})
        m["round_ratios"] += r.get("round_ratios") or []
        m["created"].append(r.get("created", ""))
        commit = ((r.get("environment") or {}).get("git") or {}).get("commit")
        if commit:
            m["commits"].add(commit[:7] + ("+dirty" if (r["environment"]["git"].get("dirty")) else ""))
        m["flops"] = (r.get("flops") or {}).get("per_step") or m.get("flops")
        m["cpu"] = (r.get("environment") or {}).get("cpu") or m.get("cpu")
        for loop in LOOPS:
            m[loop]["round_medians_ms"] += r[loop]["round_medians_ms"]
            m[loop]["errors"] += r[loop]["errors"]
            m[loop]["contended"] |= bool(r[loop]["contended"])
            m[loop]["memory"] += r[loop].get("memory") or []
    peaks = machine_peaks(records)
    for m in merged.values():
        m["peak"] = peaks.get(m["machine"])
        for loop in LOOPS:
            rounds = m[loop]["round_medians_ms"]
            m[loop]["median_ms"] = float(np.median(rounds)) if rounds else None
            for key in ("peak_rss_mb", "import_rss_mb", "base_rss_mb"):
                got = [x[key] for x in m[loop]["memory"] if x.get(key) is not None]
                m[loop][key] = float(np.median(got)) if got else None
        m["ratio"] = ratio_of(m)
    return list(merged.values())


def machine_peaks(records: list[dict]) -> dict[str, dict]:
    """Per machine, the newest ``bench peak`` measurement any of its records carries: every row of a
    machine, in the overhead and the speed tables alike, reads this one measurement, never an older one
    a record kept (a peak computed before a rule was corrected stays in its record, unread)."""
    newest: dict[str, dict] = {}
    for r in records:
        peak = (r.get("environment") or {}).get("peak")
        if not isinstance(peak, dict):
            continue
        machine, when = machine_of(r), str(peak.get("measured_at") or "")  # undated: the oldest
        if machine not in newest or when > str(newest[machine].get("measured_at") or ""):
            newest[machine] = peak
    return newest


def by_machine(combos: list[dict]) -> dict[str, list[dict]]:
    """Merged combinations per machine, machines in name order."""
    out: dict[str, list[dict]] = {}
    for m in combos:
        out.setdefault(m["machine"], []).append(m)
    return dict(sorted(out.items()))


def _per_machine(records: list[dict], fmt: str, table) -> str:
    """``table(combos)`` for each machine's merged combinations, titled when there is more than one."""
    machines = by_machine(merge_rounds(records))
    title = "### " if fmt == "markdown" else ""
    return "\n\n".join((f"{title}Measured on {machine}\n\n" if len(machines) > 1 else "") + table(combos)
                       for machine, combos in machines.items())


def _sitting(combos: list[dict]) -> str:
    """When and at which commits a machine's records were measured, and whether anything ran beside."""
    created = sorted(c for m in combos for c in m["created"] if c)
    commits = sorted({c for m in combos for c in m["commits"]})
    busy = sum(1 for m in combos if any(m[loop]["contended"] for loop in LOOPS))
    return (f"records written {created[0]} to {created[-1]}" if created else "records written at unknown times") + \
        f", at commit{'s' if len(commits) != 1 else ''} {', '.join(commits) or 'unknown'}; " + \
        (f"{busy} of {len(combos)} combinations measured while other processes used the CPU (†)" if busy
         else "no combination measured while other processes used the CPU")


OVERHEAD_HEADERS = ("reference", "design", "backend", "model", "px", "strategy", "precision", "native ms", "harness ms",
                    "harness/native", "rounds", "per round", "peak RSS MiB", "errors")


def _errors(messages: list[str], width: int | None = None) -> str:
    """Each distinct error once, with how many rounds gave it."""
    counts: dict[str, int] = {}
    for m in messages:
        counts[m] = counts.get(m, 0) + 1
    text = "; ".join(m + (f" (x{n})" if n > 1 else "") for m, n in counts.items())
    return text[:width] if width else text


def _mib(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def memory_note(combos: list[dict]) -> str | None:
    """What the memory column counts, and what an idle import of each framework takes (from the records)."""
    imports = {}
    for r in combos:
        for loop in LOOPS:
            if r[loop].get("import_rss_mb") is not None and r[loop].get("base_rss_mb") is not None:
                imports.setdefault(r["spec"]["backend"], []).append((r[loop]["base_rss_mb"], r[loop]["import_rss_mb"]))
    if not imports:
        return None
    parts = [f"{b} {np.median([i for _, i in v]):.0f} MiB (+{np.median([i - a for a, i in v]):.0f})"
             for b, v in sorted(imports.items())]
    return ("peak RSS: the measuring process's peak resident set (Linux `ru_maxrss`), the interpreter and the "
            "framework's runtime included; `interleaved` processes hold both loops' networks and optimizers. "
            "Resident after an idle import of the framework (and, in brackets, above Python, NumPy and the suite "
            "before it): " + ", ".join(parts) + "; the median over these records' processes")


def render_overhead(records: list[dict], fmt: str = "terminal", target: float = 1.05) -> str:
    return _per_machine(records, fmt, lambda combos: _overhead_table(combos, fmt, target))


def _overhead_table(combos: list[dict], fmt: str, target: float) -> str:
    rows = []
    for r in sorted(combos, key=lambda r: (_reference(r), _design(r), r["spec"]["backend"], r["spec"]["model"],
                                           r["spec"]["image_size"], r["spec"]["strategy"], _precision(r))):
        s, n, h = r["spec"], r["native"], r["harness"]
        busy = " †" if n["contended"] or h["contended"] else ""
        spread = (f"{min(r['round_ratios']):.3f}–{max(r['round_ratios']):.3f}" if r["round_ratios"] else "-")
        errors = _errors(n["errors"] + h["errors"])
        rows.append(dict(zip(OVERHEAD_HEADERS, [
            _reference(r), _design(r), s["backend"], s["model"], s["image_size"], s["strategy"], _precision(r),
            "-" if n["median_ms"] is None else f"{n['median_ms']:.1f}",
            "-" if h["median_ms"] is None else f"{h['median_ms']:.1f}",
            ("-" if r["ratio"] is None else f"{r['ratio']:.3f}") + busy, len(r["round_ratios"]), spread,
            _mib(h["peak_rss_mb"]), errors])))
    headers = [k for k in OVERHEAD_HEADERS if (k != "errors" or any(row["errors"] for row in rows))
               and (k != "reference" or len({row["reference"] for row in rows}) > 1)
               and (k != "peak RSS MiB" or any(row[k] != "-" for row in rows))]
    table = tabulate([[row[k] for k in headers] for row in rows], headers=headers, tablefmt=tablefmt(fmt),
                     disable_numparse=True)
    notes = []
    for reference, design in sorted({(_reference(r), _design(r)) for r in combos}):
        ratios = [r["ratio"] for r in combos if (_reference(r), _design(r)) == (reference, design)]
        within = sum(1 for x in ratios if x is not None and x <= target)
        refused = sum(1 for x in ratios if x is None)
        notes.append(f"reference {reference}, {design}: {within} of {len(ratios) - refused} measured combinations "
                     f"at or below harness/native {target}" + (f" ({refused} refused or not measured)" if refused else ""))
    if any(_reference(r) == SHARED for r in combos):
        notes.append(f"reference `{SHARED}`: records from before the reference loop stopped sharing the harness's "
                     "plan application and optimizer set-up; a cost they share is invisible in their ratio")
    if any("†" in row["harness/native"] for row in rows):
        notes.append("† measured while other processes used > 10% of the machine's CPU")
    if memory := memory_note(combos):
        notes.append(memory)
    notes.append(_sitting(combos))
    return table + "\n\n" + "\n\n".join(notes)


SPEED_HOW = (
    "Each framework's own loop (the overhead table's `native`: its zoo's network, its fastest idiom), "
    "batch 16, one table per machine: ms per train step, the median of the rounds' medians [their range]; "
    "img/s from it; GFLOP/s: the step's FLOPs (convolutions and dense layers that run, forward and backward, "
    "counted from the layers: `bench.measure.flops`) over that time; % of peak: of the fastest kernel "
    "`bench peak` measured in that precision on that machine at these threads (named below), and of the "
    "theoretical peak; vs fp32: the fp32 step time over this one, same machine and design (above 1: "
    "faster than fp32).")


def _ms_range(loop: dict) -> str:
    rounds = loop["round_medians_ms"]
    if not rounds:
        return "-"
    return f"{loop['median_ms']:.1f} [{min(rounds):.1f}–{max(rounds):.1f}]"


def render_speed(records: list[dict], fmt: str = "terminal", loop: str = "native") -> str:
    """Step time, throughput and the fraction of the machine's peak per backend, model, size,
    strategy and precision, from overhead records: one table per machine, with the peak its
    records carry and when they were measured."""
    return _per_machine(records, fmt, lambda combos: _speed_table(combos, fmt, loop))


def _speed_table(combos: list[dict], fmt: str, loop: str) -> str:
    designs = len({_design(r) for r in combos}) > 1
    # one row per combination: where records of an older reference loop and of the independent one both
    # measured it, the independent one's (then the newest)
    latest = sorted(combos, key=lambda r: (_reference(r) != SHARED, max(r["created"] or [""])))
    by_key = {(r["spec"]["backend"], r["spec"]["model"], r["spec"]["image_size"], r["spec"]["strategy"],
               _design(r), _precision(r)): r for r in latest}
    rows, peaks = [], {}
    for key in sorted(by_key):
        r = by_key[key]
        backend, model, size, strategy, design, precision = key
        ms, flops, peak = r[loop]["median_ms"], r.get("flops"), r.get("peak")
        best = best_measured(peak, precision)
        theory = ((peak or {}).get("theoretical") or {}).get(precision, {}).get("gflops")
        if best:
            peaks[precision] = best
        first = [backend, model, size, strategy] + ([design] if designs else []) + [precision]
        if ms is None:
            errors = _errors(r[loop]["errors"], 160) or "not measured"
            rows.append(first + ["-", "-", "-", "-", "-", "-", f"refused: {errors}"])
            continue
        gflops = flops / ms / 1e6 if flops else None
        fp32 = by_key.get((backend, model, size, strategy, design, "fp32"))
        ratio = (f"{fp32[loop]['median_ms'] / ms:.2f}" if precision != "fp32" and fp32 and fp32[loop]["median_ms"]
                 else "")
        busy = " †" if r[loop]["contended"] else ""
        rows.append(first + [_ms_range(r[loop]) + busy,
                             f"{r['spec']['batch_size'] / ms * 1e3:.0f}",
                             "-" if gflops is None else f"{gflops:.0f}",
                             "-" if gflops is None or not best else f"{100 * gflops / best['gflops']:.0f}%",
                             "-" if gflops is None or not theory else f"{100 * gflops / theory:.0f}%",
                             _mib(r[loop]["peak_rss_mb"]), ratio])
    headers = (["backend", "model", "px", "strategy"] + (["design"] if designs else [])
               + ["precision", "ms/step [range]", "img/s", "GFLOP/s", "% measured peak", "% theoretical",
                  "peak RSS MiB", "vs fp32"])
    table = tabulate(rows, headers=headers, tablefmt=tablefmt(fmt), disable_numparse=True)
    notes = [f"measured peak, {p}: {b['gflops']:.0f} GFLOP/s, {b['kernel']} ({b['library']})"
             for p, b in sorted(peaks.items())]
    measured = next((r["peak"].get("measured_at") for r in combos if r.get("peak")), None)
    if measured:
        notes.append(f"peaks: `bench peak` measured {measured}, the newest among this machine's records; every row "
                     "and the overhead section use this one measurement")
    theory = next((r["peak"]["theoretical"] for r in combos if (r.get("peak") or {}).get("theoretical")), None)
    if theory:
        for p in ("fp32", "bf16", "fp16"):
            t = theory.get(p)
            if t is None:
                continue  # a peak measured before this precision was counted
            notes.append(f"theoretical, {p}: " + (f"{t['gflops']:.0f} GFLOP/s = {theory['cores']} cores x "
                                                   f"{theory['clock_mhz']:.0f} MHz x {t['flop_per_cycle']} FLOP/cycle "
                                                   f"({t['assumption']})" if t.get("gflops") else t.get("why", "-")))
            if t.get("gflops") and p in peaks and peaks[p]["gflops"] > t["gflops"]:
                notes.append(f"the measured {p} kernel beats this theoretical figure ({peaks[p]['gflops']:.0f} > "
                             f"{t['gflops']:.0f}): the clock read ({theory.get('clock_source', '?')}) is below the "
                             "one the cores ran at, so read % theoretical as an upper bound and % measured peak as "
                             "the share of what the machine attains")
    cpus = sorted({r["cpu"] for r in combos if r.get("cpu")})
    if cpus:
        notes.append("CPU: " + "; ".join(cpus))
    if memory := memory_note(combos):
        notes.append(memory)
    notes.append(_sitting(combos))
    return table + "\n\n" + "\n\n".join(notes)


def render_peak(peak: dict, fmt: str = "terminal") -> str:
    rows = [[name, k["precision"], k["library"], k["shape"].replace("n", str(k["size"])) if "size" in k
             else k["shape"], f"{k['gflops']:.1f}", f"{k['median_gflops']:.1f}",
             k["runs"]] for name, k in peak["kernels"].items()]
    theory = peak.get("theoretical") or {}
    for p in ("fp32", "bf16", "fp16"):
        t = theory.get(p) or {}
        rows.append([f"theoretical {p}", p, t.get("assumption") or t.get("why", "-"), "-",
                     f"{t['gflops']:.1f}" if t.get("gflops") else "-", "-", "-"])
    return (f"{peak.get('key', {}).get('cpu', '?')}, {peak.get('threads')} threads, measured {peak.get('measured_at')}"
            "\n\n" + tabulate(rows, headers=["kernel", "precision", "library / assumption", "shape", "best GFLOP/s",
                                            "median GFLOP/s", "runs"], tablefmt=tablefmt(fmt), disable_numparse=True))


def merge_tune(records: list[dict]) -> list[dict]:
    """One table per (backend, strategy, batch): records of the same backend, e.g. more rounds
    measured later or extra knobs, pool their processes per (setting, value) row and cell; a
    cell is then the median of its processes' medians. The defaults row comes first."""
    merged: dict[tuple, dict] = {}
    for rec in sorted(records, key=lambda r: r.get("created", "")):
        key = (rec["backend"], rec["strategy"], rec["batch_size"])
        m = merged.setdefault(key, {"backend": rec["backend"], "strategy": rec["strategy"],
                                    "batch_size": rec["batch_size"], "defaults": rec["defaults"], "rows": {}})
        for row in rec["rows"]:
            r = m["rows"].setdefault((row["knob"], row["value"]), {"knob": row["knob"], "value": row["value"],
                                                                   "rounds_ms": {}, "errors": {}, "busy": False})
            for cell, medians in row.get("rounds_ms", {}).items():
                r["rounds_ms"].setdefault(cell, []).extend(medians)
            r["errors"].update({k: v for k, v in row["errors"].items() if k not in r["rounds_ms"]})
            r["busy"] |= bool(row.get("busy"))
    out = []
    for m in merged.values():
        rows = sorted(m["rows"].values(), key=lambda r: r["knob"] != "(defaults)")
        for r in rows:
            r["ms"] = {cell: float(np.median(v)) for cell, v in r["rounds_ms"].items()}
            r["errors"] = {k: v for k, v in r["errors"].items() if k not in r["ms"]}
        out.append(m | {"rows": rows})
    return out


def render_tune(rec: dict, fmt: str = "terminal") -> str:
    keys = sorted({k for row in rec["rows"] for k in row["ms"]} | {k for row in rec["rows"] for k in row["errors"]},
                  key=lambda k: (k.split(" ")[0], int(k.split(" ")[1][:-2])))
    base = rec["rows"][0]["ms"]
    body = []
    for row in rec["rows"]:
        cells = []
        for k in keys:
            if k in row["ms"]:
                ratio = f" ({row['ms'][k] / base[k]:.2f}x)" if k in base and row is not rec["rows"][0] else ""
                spread = row.get("rounds_ms", {}).get(k, [])
                spread = f" [{min(spread):.0f}–{max(spread):.0f}, n={len(spread)}]" if len(spread) > 1 else ""
                cells.append(f"{row['ms'][k]:.1f}{ratio}{spread}" + (" †" if row.get("busy") else ""))
            else:
                cells.append(row["errors"].get(k, "-"))
        body.append([row["knob"], row["value"] or ", ".join(f"{k}={v}" for k, v in rec["defaults"].items()) or "-"]
                    + cells)
    title = (f"{rec['backend']}: train step (harness, {rec['strategy']}, batch {rec['batch_size']}), median ms "
             "of the processes' medians [their range, number of processes]")
    return title + "\n\n" + tabulate(body, headers=["setting", "value"] + keys,
                                     tablefmt=tablefmt(fmt),
                                     disable_numparse=True)


def overhead_report(records: list[dict], fmt: str, source) -> str:
    head = generated_header("Harness overhead", f"overhead --from {source}", len(records), OVERHEAD_HOW) + "\n" \
        if fmt == "markdown" else ""
    speed = (("## Speed against the machine's peak\n\n" + SPEED_HOW + "\n\n") if fmt == "markdown" else "\n\n") \
        + render_speed(records, fmt)
    return head + render_overhead(records, fmt) + "\n\n" + speed


def tune_report(records: list[dict], fmt: str, source) -> str:
    head = generated_header("Runtime settings tried", f"tune --from {source}", len(records), TUNE_HOW) + "\n" \
        if fmt == "markdown" else ""
    return head + "\n\n".join(("## " if fmt == "markdown" else "") + render_tune(r, fmt) for r in merge_tune(records))


PROFILE_HOW = (
    "Each framework's own reference loop (as `bench overhead` times it), compiled and warmed up, then "
    "profiled by the framework's own profiler for the record's steps; per operator kind, its self time "
    "and share of all operator time; `attributed`: operator time over the profiled wall time (the rest is "
    "the framework's dispatch, Python, and what its profiler does not see). MXNet: its profiler names "
    "bulk-executed segments of a hybridized graph, not single operators (profile with `--set "
    "MXNET_EXEC_BULK_EXEC_TRAIN=0` for per-operator names, at some cost in speed), and its aggregate "
    "statistics list each operator about twice per call under NaiveEngine (measured: 117 convolution "
    "backward entries for 3 steps of ResNet-18's 20 convolutions), so its attributed share exceeds 100%: "
    "read MXNet's rows as shares.")


def render_profiles(records: list[dict], fmt: str = "terminal", top: int = 6) -> str:
    parts = []
    for rec in sorted(records, key=lambda r: json.dumps(r.get("spec"), sort_keys=True, default=str)):
        try:
            parts.append(_profile_section(rec, fmt, top))
        except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
            parts.append(f"a malformed profile record ({type(e).__name__}: {e}), created {rec.get('created')!r}")
    return "\n\n".join(parts)


def _profile_section(rec: dict, fmt: str, top: int) -> str:
    s = rec["spec"]
    title = f"{s['backend']} {s['model']} {s['image_size']} px, {s['strategy']}, {s.get('precision', 'fp32')}"
    if rec.get("settings"):
        title += " (" + ", ".join(f"{k}={v}" for k, v in sorted(rec["settings"].items())) + ")"
    if "error" in rec:
        return f"{title}: not profiled ({rec['error']})"
    ops = sorted(((str(k), float(v)) for k, v in rec["ops_ms"].items()), key=lambda kv: -kv[1])
    total = sum(v for _, v in ops) or 1.0
    rows = [[name[:60], f"{ms / s['steps']:.1f}", f"{100 * ms / total:.0f}%"] for name, ms in ops[:top]]
    rows.append([f"({len(ops) - top} more)" if len(ops) > top else "-",
                 f"{sum(v for _, v in ops[top:]) / s['steps']:.1f}",
                 f"{100 * sum(v for _, v in ops[top:]) / total:.0f}%"])
    head = (f"{title}: {total / s['steps']:.1f} ms of operators per step, attributed "
            f"{100 * total / rec['wall_ms']:.0f}% of {rec['wall_ms'] / s['steps']:.1f} ms wall per step")
    return ("### " if fmt == "markdown" else "") + head + "\n\n" + tabulate(
        rows, headers=["operator", "ms/step", "share"], tablefmt=tablefmt(fmt), disable_numparse=True)


def profile_report(records: list[dict], fmt: str, source) -> str:
    head = generated_header("Where the time goes", f"profile --from {source}", len(records), PROFILE_HOW) + "\n" \
        if fmt == "markdown" else ""
    return head + render_profiles(records, fmt)
