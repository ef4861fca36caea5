"""Hostile records against the site, in a real browser (issue 37): payloads in every record field that
reaches a page, a record folder named like a ``javascript:`` URL. None may run; the pages still show
the other records. Two controls prove the check can fail: the same payload without the page's
Content-Security-Policy runs, and so does one injected past the escaping."""
import json
import shutil
from pathlib import Path

import pytest

from bench.report.site import write_site

from .site_records import site_records
from .test_report_groups import record
from .test_site_browser import HAVE, browser, open_page  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(not HAVE, reason="needs Debian's chromium + chromium-driver and selenium")


def payload(tag: str) -> str:
    """Each form that ran in an earlier version: a fake table around an element with a handler, a script
    element, an attribute break-out; each sets the title to say which field it came through."""
    run = f"document.title='PWNED {tag}'"
    return (f'boom {tag}\n<table>\n<img src=x onerror="{run}">\n</table>\n'
            f'<script>{run}</script>"><svg onload="{run}"></svg>')


def hostile_site(root: Path) -> Path:
    site_records(root)
    runs = root / "runs"
    for field in ("experiment", "data_dir", "train_split", "archive", "pretrained"):
        rec = record(seed=0, **{field: payload(f"config.{field}")})
        (runs / f"hostile_{field}.json").write_text(json.dumps(rec))
    failed = record(seed=1, experiment="hostile")
    failed.update(status="failed", error=payload("error"))
    (runs / "hostile_error.json").write_text(json.dumps(failed))
    flagged = record(seed=2, experiment="hostile", flags=[{"flag": payload("flags.flag"), "why": payload("flags.why")}])
    (runs / "hostile_flags.json").write_text(json.dumps(flagged))
    machine = record(seed=3, experiment="hostile-machine")
    machine["environment"] = {"cpu": payload("environment.cpu"), "cpu_count": 2, "cpu_flags": ["avx2"], "gpu": [],
                              "frameworks": {"fake": payload("frameworks")}}
    (runs / "hostile_cpu.json").write_text(json.dumps(machine))
    study = json.loads((runs / "study.json").read_text())
    study["key"] = payload("study.key")
    study["arm"]["experiment"] = payload("study.arm.experiment")
    (runs / "hostile_study.json").write_text(json.dumps(study))
    link = runs / "javascript:document.title='PWNED link'"
    link.mkdir()
    (link / "x.json").write_text(json.dumps(record(seed=4, experiment="hostile-link")))
    overhead = {"schema_version": 2, "kind": "overhead", "created": "2026-12-05T00:00:00Z",
                "spec": {"backend": payload("spec.backend"), "model": "resnet18", "image_size": 32, "strategy": "full",
                         "batch_size": 16, "design": payload("spec.design"), "precision": "fp32", "rounds": 1},
                "environment": {"cpu": payload("overhead.cpu"), "cpu_count": 2, "cpu_flags": ["avx2"], "gpu": []},
                "harness": {"round_medians_ms": [41.0], "errors": [payload("harness.errors")], "contended": False},
                "native": {"round_medians_ms": [40.0], "errors": [], "contended": False}, "round_ratios": [1.025]}
    (runs / "hostile_overhead.json").write_text(json.dumps(overhead))
    out = root / "site"
    write_site(out, [runs])
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_site(tmp_path_factory.mktemp("hostile"))


def title_after(driver, page: Path) -> str:
    open_page(driver, page)
    return driver.title


def test_no_payload_runs_on_any_page(browser, hostile):  # noqa: F811
    from selenium.webdriver.common.by import By
    for name in ("index.html", "speed.html"):
        page = hostile / name
        text = page.read_text()
        assert "PWNED" in text, f"{name}: the payloads did not reach the page, so this test would prove nothing"
        assert "PWNED" not in title_after(browser, page), name
        assert not browser.find_elements(By.CSS_SELECTOR, "main img, main svg[onload], main script:not([type])")
    # the other records are all still there
    assert len(browser.find_elements(By.CSS_SELECTOR, "#overhead-0 tbody tr")) >= 1


def test_a_link_named_like_a_script_stays_a_relative_file_link(browser, hostile):  # noqa: F811
    """The site written into the records' own folder: the hostile folder's name begins the link."""
    from selenium.webdriver.common.by import By
    runs = hostile.parent / "runs"
    write_site(runs, [runs])
    open_page(browser, runs / "index.html")
    links = [a for a in browser.find_elements(By.CSS_SELECTOR, "#all-0 tbody a") if "PWNED" in a.get_attribute("href")]
    assert links, "the hostile folder's record has no row link"
    for a in links:
        assert a.get_attribute("href").startswith("file://")
    links[0].click()
    assert "PWNED" not in browser.title


def test_the_content_security_policy_blocks_what_escaping_would_miss(browser, hostile, tmp_path):  # noqa: F811
    """An inline script placed in the page (as a bug in the escaping would) does not run under the
    page's CSP, and does run once the CSP is taken out: the check can fail."""
    copy = tmp_path / "copy"
    shutil.copytree(hostile, copy)
    page = (copy / "index.html").read_text()
    injected = page.replace("<main>", "<main><script>document.title='PWNED inline'</script>", 1)
    (copy / "injected.html").write_text(injected)
    assert "PWNED" not in title_after(browser, copy / "injected.html")
    start = injected.index('<meta http-equiv="Content-Security-Policy"')
    (copy / "no-csp.html").write_text(injected[:start] + injected[injected.index(">", start) + 1:])
    assert title_after(browser, copy / "no-csp.html") == "PWNED inline"
