"""Step time and accuracy across commits, per machine (asv's history, from records alone).

Records from many commits (keep them a folder per machine, as asv does; the machine is read
from each record's environment either way) become series: one per machine and
configuration (a run configuration: every hyper-parameter but the seed; an overhead
measurement: backend, model, size, strategy, precision), with one point per commit, in
the order the commits were first measured. A point holds its samples: per-run step-time
medians and final top-1 per seed (run records); per-process harness medians and
harness/native ratios (overhead records).

A change between two consecutive points is marked only when it is significant *and*
beyond a factor (asv's rule; ``bench.measure.stats.time_change``: Mann-Whitney U over the
per-process samples and the ratio of medians beyond ``FACTOR``; top-1: Welch's 95% interval
excluding 0 and at least ``MIN_TOP1``), and the page names the first commit after it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.plan.config import precision_of
from bench.measure.stats import mean_interval, time_change, welch_difference

from .gate import FACTOR, OVERHEAD_FACTOR
from .groups import clean_step_ms, config_name, machine_of
from .htmlpage import esc, figure_div, filter_table, slug

MIN_TOP1 = 0.02      # a top-1 change smaller than this is not marked, however significant


def commit_of(rec: dict) -> str:
    git = (rec.get("environment") or {}).get("git") or {}
    commit = (git.get("commit") or "unknown")[:10]
    return commit + ("+modified" if git.get("dirty") else "")


@dataclass
class Point:
    commit: str
    first_seen: str
    samples: list[float] = field(default_factory=list)


@dataclass
class Series:
    machine: str
    name: str            # what was measured: the configuration
    metric: str          # "step ms", "top-1", "harness/native"
    points: list[Point]

    def changes(self) -> list[dict]:
        out = []
        for before, after in zip(self.points, self.points[1:]):
            if not before.samples or not after.samples:
                continue
            if self.metric == "top-1":
                diff, ci = welch_difference(before.samples, after.samples)
                marked = ci is not None and not ci[0] <= 0 <= ci[1] and abs(diff) >= MIN_TOP1
                what = f"{diff:+.3f} top-1"
            else:
                factor = OVERHEAD_FACTOR if self.metric == "harness/native" else FACTOR
                got = time_change(before.samples, after.samples, factor)
                marked = got["significant"] and got["beyond_factor"]
                what = f"{got['ratio']:.2f}x" + (f" (p={got['p']:.3f})" if got["p"] is not None else "")
            if marked:
                out.append({"after": after.commit, "before": before.commit, "change": what})
        return out


def _series(samples: dict[tuple, dict[str, list]], first_seen: dict[str, str]) -> list[Series]:
    out = []
    for (machine, name, metric), by_commit in sorted(samples.items()):
        points = [Point(c, first_seen[c], v) for c, v in by_commit.items()]
        points.sort(key=lambda p: (p.first_seen, p.commit))
        out.append(Series(machine, name, metric, points))
    return out


def history_series(runs: list[dict], overhead: list[dict]) -> list[Series]:
    """Every series with the records' samples, points in commit order (first measured first)."""
    samples: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    first_seen: dict[str, str] = {}
    for rec in runs:
        c = rec.get("config") or {}
        if rec.get("status") != "ok" or c.get("arm") == "pretrain" or c.get("trial") is not None:
            continue
        commit = commit_of(rec)
        first_seen[commit] = min(first_seen.get(commit, "~"), rec.get("created") or "~")
        name, machine = config_name(rec), machine_of(rec)
        samples[(machine, name, "top-1")][commit].append(float(rec["accuracy"]["final"]))
        ms = clean_step_ms(rec)
        if ms is not None:
            samples[(machine, name, "step ms")][commit].append(ms)
    for rec in overhead:
        s = rec.get("spec") or {}
        commit = commit_of(rec)
        first_seen[commit] = min(first_seen.get(commit, "~"), rec.get("created") or "~")
        name = (f"overhead {s.get('backend')} {s.get('model')} {s.get('image_size')} px {s.get('strategy')} "
                f"{precision_of(s)} ({s.get('design', 'processes')})")
        machine = machine_of(rec)
        harness = (rec.get("harness") or {}).get("round_medians_ms") or []
        if harness and not (rec.get("harness") or {}).get("contended"):
            samples[(machine, name, "step ms")][commit].extend(float(v) for v in harness)
        samples[(machine, name, "harness/native")][commit].extend(float(v) for v in rec.get("round_ratios") or [])
    return _series(samples, first_seen)


def _cell(metric: str, values: list[float]) -> str:
    if not values:
        return "-"
    if metric == "top-1":
        mean, _, ci = mean_interval(values)
        return f"{mean:.3f}" + (f" [{max(0, ci[0]):.3f}, {min(1, ci[1]):.3f}]" if ci else "") + f" ({len(values)})"
    digits = ".3f" if metric == "harness/native" else ".1f"
    return f"{np.median(values):{digits}} [{min(values):{digits}}, {max(values):{digits}}] ({len(values)})"


def history_page_body(runs: list[dict], overhead: list[dict]) -> str:
    """The history page's HTML (empty when no series spans two commits)."""
    series = [s for s in history_series(runs, overhead) if len(s.points) > 1]
    if not series:
        return ""
    import plotly.graph_objects as go
    parts = [f'<p class="note">One series per machine and configuration, a point per commit (in the order the '
             f"commits were first measured): step time as the median of the per-process medians [their range] "
             f"(n processes), top-1 as the mean over seeds [95% t interval] (n seeds). A change is marked only "
             f"when significant (Mann-Whitney U over processes, p &lt; 0.05; top-1: Welch's interval excludes 0) "
             f"and beyond {FACTOR:g}x ({OVERHEAD_FACTOR:g}x for harness/native; {MIN_TOP1:g} top-1), at the first "
             f"commit after it; a U test needs at least 4 processes a side to reach p &lt; 0.05.</p>"]
    rows, marks = [], []
    for s in series:
        where = [esc(s.machine), esc(s.name), esc(s.metric)]
        marks += [where + [esc(ch["before"]), esc(ch["after"]), esc(ch["change"])] for ch in s.changes()]
        rows.append(where + [" &rarr; ".join(f"{esc(p.commit)}: {esc(_cell(s.metric, p.samples))}" for p in s.points)])
    filters = ("machine", "metric")
    parts.append('<h2 id="changes">Changes (significant and beyond the factor)</h2>')
    parts.append(filter_table(["machine", "configuration", "metric", "before", "first commit after", "change"],
                              marks, filters=filters) if marks else '<p class="note">none</p>')
    parts.append('<h2 id="series">Every series</h2>')
    parts.append(filter_table(["machine", "configuration", "metric", "per commit"], rows, filters=filters))
    for metric in ("step ms", "harness/native", "top-1"):
        chosen = [s for s in series if s.metric == metric]
        if not chosen:
            continue
        fig = go.Figure()
        for s in chosen:
            lo = [_bounds(metric, p.samples) for p in s.points]
            fig.add_trace(go.Scatter(
                x=[p.commit for p in s.points], y=[round(b[0], 4) for b in lo], mode="lines+markers",
                error_y={"type": "data", "symmetric": False, "array": [round(b[2] - b[0], 4) for b in lo],
                         "arrayminus": [round(b[0] - b[1], 4) for b in lo]},
                name=f"{s.name} ({s.machine})"))
        fig.update_layout(title=f"{metric} across commits", template="plotly_white", height=460,
                          xaxis={"type": "category", "title": "commit (first measured first)"},
                          legend={"font": {"size": 9}})
        parts.append(figure_div(f"history-{slug(metric)}", fig))
    return "\n".join(parts)


def _bounds(metric: str, values: list[float]) -> tuple[float, float, float]:
    if metric == "top-1":
        mean, _, ci = mean_interval(values)
        return (mean, ci[0], ci[1]) if ci else (mean, mean, mean)
    return float(np.median(values)), float(min(values)), float(max(values))
