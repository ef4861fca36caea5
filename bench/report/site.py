"""``bench report --format html OUT/``: the results as a static, self-contained site.

Generated from records only, by the functions that write the markdown report
(``report_sections`` in ``tables.py``: the same rows, in tabulate's escaped HTML):

* ``index.html``: the answers first (fine-tuned minus scratch per experiment and backend, with
  intervals), then every report section; the tables filter (a select per experiment,
  model, backend, arm and strategy column, plus free text) and sort (click a header);
  the "All configurations" rows link to the JSON records behind them (config,
  environment, runtime settings), by paths relative to the page; interactive plots
  (Plotly): accuracy per epoch, fine-tuned minus scratch with intervals, tuning trials
  against lr, step time;
* ``speed.html``: the ``bench overhead`` records, a chart per machine first (achieved GFLOP/s per
  backend and precision, the measured peak marked), then the tables (harness against each
  framework's own loop, speed against the machine's peak), when the paths hold any;
* ``history.html``: step time and accuracy across commits per machine
  (``bench/report/history.py``), when the records span more than one commit.

Nothing is fetched at view time: Plotly's JavaScript (``plotly.min.js``) and the pages'
own script and style (``site.js``, ``site.css``) are written beside the pages, which open
from disk. Nothing depends on the clock or on dictionary order, so the same records
give the same bytes (``tests/bench/report/test_site.py``). Every string from a record is
HTML-escaped: records are untrusted input.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.plan.config import RunConfig

from .groups import group_records, row_label
from . import htmlpage
from .htmlpage import PLOTLY_JS, esc, figure_div, filter_table, page, relative_link, slug, wrap_tables
from .tables import HOW_TO_READ, gaps, render_notes, report_sections, table_rows, timing_marks

def _relative(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()


def all_configurations(records: list[dict], paths: dict[int, Path], out_dir: Path) -> str:
    """The "All configurations" table with a column of links to each row's records (by seed)."""
    headers, rows, groups = table_rows(records)
    body = []
    for row, g in zip(rows, groups):
        links = " ".join(relative_link(_relative(paths[id(r)], out_dir), f's{r["config"]["seed"]}')
                         for r in g.runs if id(r) in paths)
        body.append([esc(c) for c in row] + [links])
    notes = render_notes(records, groups)
    table = filter_table(headers + ["records"], body, "all-0")
    return table + ("\n" + wrap_tables(notes, "all-notes") if notes else "")


# --- plots (Plotly figures as JSON, drawn by the page's plotly.min.js) ------------------------

def _curve(g) -> tuple[list[int], np.ndarray, np.ndarray, str] | None:
    """The group's per-epoch top-1 (mean, sd over seeds) on the split its runs scored at more epochs:
    test, or validation where test was scored less often (a tuned run scores test at its end only);
    the epochs scored; None where some run scored neither."""
    def scored(split: str) -> list[list[tuple[int, float]]]:
        return [[(p["epoch"], p[f"{split}_acc"]) for p in r["curve"] if f"{split}_acc" in p] for r in g.runs]
    split, points = max((("eval", scored("eval")), ("val", scored("val"))), key=lambda sp: min(map(len, sp[1])))
    n = min(len(c) for c in points)
    if n == 0:
        return None
    a = np.array([[acc for _, acc in c[:n]] for c in points], dtype=float)
    sd = a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(n)
    return [epoch for epoch, _ in points[0][:n]], a.mean(axis=0), sd, split


def accuracy_figure(experiment: str, groups):
    import plotly.graph_objects as go
    fig = go.Figure()
    for g in groups:
        curve = _curve(g)
        if curve is None:
            continue
        epochs, mean, sd, split = curve
        fig.add_trace(go.Scatter(
            x=epochs, y=[round(float(v), 4) for v in mean], mode="lines+markers",
            error_y={"type": "data", "array": [round(float(v), 4) for v in sd], "visible": True, "thickness": 1},
            name=f"{g.label('backend')} {row_label(g)}{' (validation)' if split == 'val' else ''} n={len(g.runs)}"))
    fig.update_layout(title=f"{experiment}: top-1 per epoch (mean over seeds, bars ±1 sd)",
                      xaxis={"title": "epoch", "dtick": 1}, yaxis_title="top-1", template="plotly_white", height=460,
                      legend={"font": {"size": 10}})
    return fig


def gap_figure(experiment: str, rows: list[dict]):
    import plotly.graph_objects as go
    labels = [f"{r['backend']} {r['strategy']} vs {r['scratch_init']}-init scratch" for r in rows]
    fig = go.Figure(go.Scatter(
        x=[round(r["gap"], 4) for r in rows], y=labels, mode="markers",
        error_x={"type": "data", "symmetric": False, "array": [round(r["ci"][1] - r["gap"], 4) for r in rows],
                 "arrayminus": [round(r["gap"] - r["ci"][0], 4) for r in rows]}))
    fig.add_vline(x=0, line_color="black", line_width=1)
    fig.update_layout(title=f"{experiment}: fine-tuned minus scratch (95% interval)", template="plotly_white",
                      xaxis_title="top-1 difference", height=160 + 26 * len(rows), yaxis={"autorange": "reversed"})
    return fig


def trials_figure(experiment: str, studies: list[dict]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .studies import arm_label
    arms = sorted({arm_label(s["arm"]) for s in studies})
    backends = sorted({s["arm"]["backend"] for s in studies})
    fig = make_subplots(rows=1, cols=len(arms), subplot_titles=arms, shared_yaxes=True)
    symbols = {1: "circle", 2: "square", 4: "triangle-up"}
    for col, arm in enumerate(arms, 1):
        for s in sorted((s for s in studies if arm_label(s["arm"]) == arm), key=lambda s: s["arm"]["backend"]):
            b = s["arm"]["backend"]
            rows = [r for r in s["trial_results"] if r["val_acc"] is not None]
            fig.add_trace(go.Scatter(
                x=[r["point"]["lr"] for r in rows], y=[r["val_acc"] for r in rows], mode="markers",
                marker={"color": f"hsl({120 * backends.index(b)},60%,45%)", "size": 9,
                        "symbol": [symbols.get(r["point"]["schedule"], "x") for r in rows],
                        "line": {"width": [3 if r["trial"] == s.get("winner") else 0 for r in rows],
                                 "color": "black"}},
                text=[f"trial {r['trial']}, wd {r['point']['weight_decay']:.1g}, x{r['point']['schedule']}"
                      for r in rows],
                name=b, legendgroup=b, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(type="log", title_text="lr", row=1, col=col)
    fig.update_yaxes(title_text="validation top-1", row=1, col=1)
    fig.update_layout(title=f"{experiment}: tuning trials (winners outlined; symbol: schedule x1/x2/x4)",
                      template="plotly_white", height=420)
    return fig


def step_time_figure(groups):
    import plotly.graph_objects as go
    bars = []
    for g in groups:
        if timing_marks(g):
            continue
        steady = [s for s in ((r.get("timing") or {}).get("steady") or {} for r in g.runs)
                  if s.get("n") and s.get("median_ms") is not None and s.get("iqr_ms") is not None]
        if not steady:
            continue
        c = RunConfig.from_json(g.config | {"seed": 0}).to_json()  # fields an older record lacks: their defaults
        bars.append((f"{c['experiment']} {g.label('backend')} {row_label(g)} (b{c['batch_size']}, {c['image_size']}px)",
                     float(np.median([s["median_ms"] for s in steady])),
                     float(np.median([s["iqr_ms"] for s in steady]))))
    if not bars:
        return None
    bars.sort()
    fig = go.Figure(go.Bar(x=[round(b[1], 3) for b in bars], y=[b[0] for b in bars], orientation="h",
                           error_x={"type": "data", "array": [round(b[2] / 2, 3) for b in bars]}))
    fig.update_layout(title="train step, median ms (steady state; bars ±IQR/2)", template="plotly_white",
                      height=160 + 18 * len(bars), yaxis={"autorange": "reversed", "tickfont": {"size": 9}})
    return fig


def answers_html(records: list[dict]) -> str:
    """The first screen: per experiment, fine-tuned minus scratch per backend with its interval."""
    all_gaps = gaps(records)
    return "\n".join(figure_div(f"gap-{slug(exp)}", gap_figure(exp, [r for r in all_gaps if r["experiment"] == exp]))
                     for exp in sorted({r["experiment"] for r in all_gaps}))


def speed_figure(machine: str, combos: list[dict]):
    """Achieved GFLOP/s of each framework's own loop per model, size and strategy, a bar per backend
    and precision, with the machine's measured peak per precision as a dashed line."""
    import plotly.graph_objects as go

    from bench.measure.peak import best_measured
    fig, peaks = go.Figure(), {}
    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for m in sorted(combos, key=lambda m: _order(m["spec"])):
        spec, ms = m["spec"], m["native"]["median_ms"]
        if ms is None or not m.get("flops"):
            continue
        what = f"{spec['model']} {spec['image_size']}px {spec['strategy']}"
        series[(spec["backend"], spec["precision"])][what] = round(m["flops"] / ms / 1e6, 1)
        best = best_measured(m.get("peak"), spec["precision"])
        if best:
            peaks[spec["precision"]] = best
    for (backend, precision), points in sorted(series.items()):
        fig.add_trace(go.Bar(x=list(points), y=list(points.values()), name=f"{backend} {precision}"))
    for i, (precision, best) in enumerate(sorted(peaks.items())):
        gflops = round(float(best["gflops"]), 1)  # a shape takes data values; on a log axis a label takes log10
        fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y", y0=gflops, y1=gflops,
                      line={"dash": "dash", "width": 1, "color": "gray"})
        fig.add_annotation(xref="paper", x=i % 2, yref="y", y=round(float(np.log10(gflops)), 4),
                           xanchor="left" if i % 2 == 0 else "right", yanchor="top" if i % 2 else "bottom",
                           showarrow=False,
                           font={"size": 10}, text=f"measured {precision} peak {best['gflops']:.0f} GFLOP/s: "
                                                   f"{best['kernel']} ({best['library']})")
    fig.update_layout(title=f"{machine}: achieved GFLOP/s of each framework's own loop (log scale)",
                      barmode="group", template="plotly_white", yaxis={"title": "GFLOP/s", "type": "log"},
                      height=520, legend={"font": {"size": 10}, "orientation": "h", "y": -0.15})
    return fig


def _order(spec: dict) -> str:
    return f"{spec['model']} {spec['image_size']:05d} {spec['strategy']}"


def plots_html(records: list[dict], studies: list[dict]) -> str:
    """The plots after the tables: accuracy per epoch, tuning trials, step time (the answers, the
    fine-tuned-minus-scratch figures, open the page: ``answers_html``)."""
    from .studies import latest_studies
    groups = group_records(records)
    by_exp: dict[str, list] = defaultdict(list)
    for g in groups:
        by_exp[g.label("experiment")].append(g)
    parts = []
    for exp in sorted(by_exp):
        parts.append(f"<h3>{esc(exp)}</h3>")
        parts.append(figure_div(f"acc-{slug(exp)}", accuracy_figure(exp, by_exp[exp])))
        exp_studies = [s for s in latest_studies(list(studies)) if s["arm"]["experiment"] == exp]
        if exp_studies:
            parts.append(figure_div(f"trials-{slug(exp)}", trials_figure(exp, exp_studies)))
    fig = step_time_figure(groups)
    if fig is not None:
        parts.append("<h3>step time</h3>" + figure_div("step-time", fig))
    return "\n".join(parts)


# --- pages -----------------------------------------------------------------------------------

def _markdown_to_html(text: str) -> str:
    """HOW_TO_READ's bullets as an escaped list (bold kept)."""
    items, current = [], []
    for line in text.splitlines()[1:]:
        if line.startswith("* "):
            if current:
                items.append(" ".join(current))
            current = [line[2:].strip()]
        elif line.strip():
            current.append(line.strip())
    if current:
        items.append(" ".join(current))
    out = []
    for item in items:
        escaped = esc(item)
        while escaped.count("**") >= 2:
            escaped = escaped.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
        out.append(f"<li>{escaped}</li>")
    return "<ul>" + "".join(out) + "</ul>"


def index_page(records, studies, paths, out_dir: Path, nav, sources: str) -> str:
    parts = [f'<p class="note">Generated by <code>python -m bench report --format html {esc(sources)}</code> from '
             f"{len(records) + len(studies)} JSON records; do not edit by hand.</p>",
             f"<details><summary>How to read these tables</summary>{_markdown_to_html(HOW_TO_READ)}</details>"]
    toc = []
    answers = answers_html(records)
    if answers:
        toc.append('<a href="#answers">Does fine-tuning pay off?</a>')
        parts.append(f'<h2 id="answers">Does fine-tuning pay off here? Fine-tuned minus scratch, per backend '
                     f'(95% interval; right of 0: fine-tuning wins)</h2>\n{answers}')
    for key, title, body in report_sections(records, "html", studies):
        if not body:
            continue
        toc.append(f'<a href="#{key}">{esc(title)}</a>')
        content = all_configurations(records, paths, out_dir) if key == "all" else wrap_tables(body, key)
        parts.append(f'<h2 id="{key}">{esc(title)}</h2>\n{content}')
    plots = plots_html(records, studies)
    if plots:
        toc.append('<a href="#plots">Plots</a>')
        parts.append(f'<h2 id="plots">Plots</h2>\n{plots}')
    body = '<p class="note">' + " &middot; ".join(toc) + "</p>\n" + "\n".join(parts)
    return page("Transfer-learning results", nav, body, plots=bool(plots or answers))


def speed_page(overhead: list[dict], nav) -> str:
    """A chart per machine first (which framework is faster, how far from the peak), then the tables."""
    from .speed import OVERHEAD_HOW, SPEED_HOW, by_machine, merge_rounds, render_overhead, render_speed
    charts = [figure_div(f"speed-{i}", speed_figure(machine, combos))
              for i, (machine, combos) in enumerate(by_machine(merge_rounds(overhead)).items())]
    body = (('<h2 id="chart">Which framework is faster here? (one chart per machine; never pooled)</h2>\n'
             + "\n".join(charts) + "\n" if charts else "")
            + f'<h2 id="overhead">Harness overhead</h2>\n<p class="note">{esc(OVERHEAD_HOW)}</p>\n'
            + wrap_tables(render_overhead(overhead, "html"), "overhead")
            + f'\n<h2 id="peak">Speed against the machine\'s peak</h2>\n<p class="note">{esc(SPEED_HOW)}</p>\n'
            + wrap_tables(render_speed(overhead, "html"), "peak"))
    return page("Harness overhead and speed against the machine's peak", nav, body, plots=bool(charts))


def write_site(out_dir: Path, paths: list[Path], sources: str = "", history_paths: list[Path] = ()) -> list[Path]:
    """Write the site for the records under ``paths`` (and ``history_paths``) into ``out_dir``."""
    import plotly.offline

    from bench.records.store import read_records

    from .history import history_page_body
    pairs, _ = read_records(paths, with_paths=True)
    records = [r for _, r in pairs]
    file_of = {id(r): f for f, r in pairs}
    studies, _ = read_records(paths, "study")
    overhead, _ = read_records(paths, "overhead")
    hist_runs = records + read_records(history_paths)[0] if history_paths else records
    hist_overhead = overhead + (read_records(history_paths, "overhead")[0] if history_paths else [])
    history = history_page_body(hist_runs, hist_overhead)
    nav = [("results", "index.html")] + ([("speed", "speed.html")] if overhead else []) \
        + ([("history", "history.html")] if history else [])
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {"index.html": index_page(records, studies, file_of, out_dir, nav, sources)}
    if overhead:
        pages["speed.html"] = speed_page(overhead, nav)
    if history:
        pages["history.html"] = page("Across commits", nav, history, plots=True)
    written = []
    for name, text in ((PLOTLY_JS, plotly.offline.get_plotlyjs()), (htmlpage.SITE_JS, htmlpage.SCRIPT),
                       (htmlpage.SITE_CSS, htmlpage.STYLE)):
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            _write_text(path, text)
        written.append(path)
    for name, text in pages.items():
        written.append(_write_text(out_dir / name, text))
    for stale in ("speed.html", "history.html"):
        if stale not in pages and (out_dir / stale).exists():
            (out_dir / stale).unlink()
    return written


def _write_text(path: Path, text: str) -> Path:
    """Whole or not at all (``bench.core.files.atomic_path``): a reader never sees half a page."""
    from bench.core.files import atomic_path
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
