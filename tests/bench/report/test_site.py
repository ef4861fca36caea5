"""`bench report --format html OUT/`: a static site from records (no browser here; see
test_site_browser.py for the page as a browser runs it)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.history import history_series
from bench.report.site import write_site
from bench.report.tables import table_rows

from .site_records import COMMITS, site_records


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    return root, site_records(root)


def test_the_site_regenerates_byte_identically(written, tmp_path):
    root, _ = written
    a = write_site(tmp_path / "a", [root / "runs"], history_paths=[root / "history"])
    b = write_site(tmp_path / "b", [root / "runs"], history_paths=[root / "history"])
    assert [p.name for p in a] == [p.name for p in b] == ["plotly.min.js", "site.js", "site.css", "index.html",
                                                          "history.html"]
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name
    again = write_site(tmp_path / "a", [root / "runs"], history_paths=[root / "history"])
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in a]


def test_rows_link_to_their_records_and_nothing_is_fetched(written, tmp_path):
    root, recs = written
    write_site(tmp_path / "s", [root / "runs"])
    page = (tmp_path / "s" / "index.html").read_text()
    body = page.split('id="all-0"')[1].split("</table>")[0]
    headers, rows, groups = table_rows([r for r in recs["runs"]])
    assert body.count("<tr>") == len(rows) + 1  # the header row
    links = re.findall(r'href="([^"]+)"', body)
    assert len(links) == sum(len(g.runs) for g in groups)
    for link in links:
        target = (tmp_path / "s" / link).resolve()
        assert target.is_file() and json.loads(target.read_text())["config_hash"]
    assert re.findall(r'<script src="([^"]+)"', page) == ["plotly.min.js", "site.js"]
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no network at view time


def test_strings_from_records_are_escaped(written, tmp_path):
    root, recs = written
    hostile = json.loads(json.dumps(recs["runs"][0]))
    hostile["config"]["notes"] = "</script><script>alert(1)</script>"
    hostile["flags"] = [{"flag": "<img src=x onerror=alert(1)>", "why": "<b>bold</b>"}]
    (root / "hostile").mkdir(exist_ok=True)
    (root / "hostile" / "h.json").write_text(json.dumps(hostile))
    write_site(tmp_path / "s", [root / "hostile"])
    page = (tmp_path / "s" / "index.html").read_text()
    assert "<img src=x" not in page and "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_history_marks_the_first_commit_after_a_significant_change(written):
    root, recs = written
    series = history_series(recs["runs"] + recs["history"], [])
    steps = {(s.name.split(" [")[0], s.metric): s for s in series if len(s.points) == 2}
    slow = steps[("folder resnet18 mxnet full", "step ms")]
    assert [p.commit for p in slow.points] == [COMMITS[0][:10], COMMITS[1][:10]]
    (change,) = slow.changes()
    assert change["after"] == COMMITS[1][:10] and change["change"].startswith("1.50x")
    assert steps[("folder resnet18 torch full", "step ms")].changes() == []      # unchanged
    assert steps[("folder resnet18 mxnet full", "top-1")].changes() == []         # same accuracy


def test_cli_writes_the_site_and_refuses_a_records_folder_as_out(written, tmp_path):
    root, _ = written
    cmd = [sys.executable, "-m", "bench", "report", "--format", "html"]
    done = subprocess.run(cmd + [str(tmp_path / "site"), str(root / "runs"), "--history", str(root / "history")],
                          capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "history.html").is_file() and "index.html" in done.stdout
    bad = subprocess.run(cmd + [str(root / "runs")], capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert bad.returncode != 0 and "holds records" in bad.stderr


def test_the_first_screen_is_the_answer(written, tmp_path):
    """index.html opens on fine-tuned minus scratch per experiment, before any table."""
    root, _ = written
    write_site(tmp_path / "s", [root / "runs"])
    page = (tmp_path / "s" / "index.html").read_text()
    answers = page.index('id="answers"')
    assert answers < page.index("<table") and page.index('id="gap-', answers) < page.index("<table")


def test_the_speed_page_opens_on_one_chart_per_machine_with_the_peak_marked(tmp_path):
    from .test_speed_table import _record
    epyc, xeon = _record("fp32", 20.0), _record("fp32", 30.0)
    xeon["environment"] = dict(xeon["environment"], cpu="Intel Xeon")
    (tmp_path / "o").mkdir()
    for i, rec in enumerate((epyc, xeon)):
        (tmp_path / "o" / f"{i}.json").write_text(json.dumps(rec))
    write_site(tmp_path / "s", [tmp_path / "o"])
    page = (tmp_path / "s" / "speed.html").read_text()
    charts = re.findall(r'id="speed-\d+"', page)
    assert len(charts) == 2 and page.index('id="speed-0"') < page.index("<table")
    assert "AMD EPYC" in page and "Intel Xeon" in page and "measured fp32 peak 200 GFLOP/s" in page
