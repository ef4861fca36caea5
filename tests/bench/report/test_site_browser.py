"""The site in a real browser: Debian's Chromium, headless, driven by Selenium through the
system's chromedriver (`.ci/run` installs both with apt). Asserts on the page's content:
tables render with the records' row counts, a filter narrows them, every plot draws, no
script error is logged. The last two tests break a page on purpose and check that these
same checks fail: a checker that cannot fail proves nothing.

Without Chromium the tests skip, except under CI (CI=true), where a missing browser fails.
"""
import os
import shutil
from pathlib import Path

import pytest

from bench.report import htmlpage
from bench.report.site import write_site
from bench.report.tables import table_rows

from .site_records import site_records

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE = Path(CHROMIUM).exists() and Path(DRIVER).exists()
try:
    import selenium  # noqa: F401
except ImportError:
    HAVE = False
if not HAVE and os.environ.get("CI"):
    pytest.fail("CI must run the browser tests: install chromium and chromium-driver (apt) and selenium (dev extra)",
                pytrace=False)
pytestmark = pytest.mark.skipif(not HAVE, reason="needs Debian's chromium + chromium-driver and selenium")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    recs = site_records(root)
    out = root / "out"
    write_site(out, [root / "runs"], history_paths=[root / "history"])
    return out, recs


def open_page(driver, path: Path) -> list[str]:
    """Load a page, wait for its plots; the SEVERE entries of the browser's log (script errors)."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    try:
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('.plot')).every(p => p.querySelector('svg.main-svg'))"))
    except Exception:
        pass  # a plot that never draws is reported by plots_drawn
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def visible_rows(driver, table_id: str) -> int:
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{table_id} tbody tr')).filter(r => r.style.display !== 'none')"
        ".length")


def plots_drawn(driver) -> tuple[int, int]:
    return driver.execute_script(
        "const p = document.querySelectorAll('.plot');"
        "return [p.length, Array.from(p).filter(x => x.querySelector('svg.main-svg g.trace')).length];")


def page_problems(driver, path: Path, table_id: str, rows: int) -> list[str]:
    """What is wrong with a page: script errors, a table short of its rows, a plot not drawn."""
    problems = open_page(driver, path)
    got = visible_rows(driver, table_id)
    if got != rows or rows == 0:
        problems.append(f"table {table_id}: {got} rows shown, expected {rows}")
    total, drawn = plots_drawn(driver)
    if total == 0 or drawn != total:
        problems.append(f"{drawn} of {total} plots drawn")
    return problems


def test_tables_render_filter_and_plots_draw(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    out, recs = site
    _, rows, groups = table_rows(recs["runs"])
    assert page_problems(browser, out / "index.html", "all-0", len(rows)) == []
    select = Select(browser.find_element(By.CSS_SELECTOR, '#all-0 select[data-column="backend"]'))
    select.select_by_visible_text("torch")
    assert visible_rows(browser, "all-0") == sum(g.label("backend") == "torch" for g in groups) < len(rows)
    count = browser.find_element(By.CSS_SELECTOR, "#all-0 .count").text
    assert count == f"{visible_rows(browser, 'all-0')} of {len(rows)} rows"
    select.select_by_visible_text("all")
    assert visible_rows(browser, "all-0") == len(rows)
    # sorting by a header keeps every row and orders that column
    header = browser.find_elements(By.CSS_SELECTOR, "#all-0 thead th")[2]
    header.click()
    column = browser.execute_script(
        "return Array.from(document.querySelectorAll('#all-0 tbody tr')).map(r => r.cells[2].textContent)")
    assert column == sorted(column) and len(column) == len(rows)
    # a row's link opens its record
    from urllib.parse import unquote, urlparse
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#all-0 tbody td:last-child a")]
    assert len(hrefs) == sum(len(g.runs) for g in groups)
    assert all(Path(unquote(urlparse(h).path)).is_file() for h in hrefs)


def test_history_page_draws_and_lists_the_change(browser, site):
    from selenium.webdriver.common.by import By
    out, _ = site
    problems = open_page(browser, out / "history.html")
    assert problems == []
    total, drawn = plots_drawn(browser)
    assert total >= 2 and drawn == total
    changes = browser.find_elements(By.CSS_SELECTOR, "#changes + div tbody tr")
    assert len(changes) == 3  # mxnet's full, linear-probe and scratch rows, each 1.5x slower at the second commit
    assert all("1.50x" in r.text and "bbbbbbbbbb" in r.text for r in changes)


def test_the_checks_fail_on_a_script_error(browser, site, tmp_path, monkeypatch):
    """Break the page's script once: the same checks must report it."""
    out, recs = site
    monkeypatch.setattr(htmlpage, "SCRIPT", htmlpage.SCRIPT.replace("(function(){", "(function(){ undefinedCall();", 1))
    broken = tmp_path / "broken"
    write_site(broken, [out.parent / "runs"])
    _, rows, _ = table_rows(recs["runs"])
    problems = page_problems(browser, broken / "index.html", "all-0", len(rows))
    assert any("undefinedCall" in p for p in problems), problems


def test_the_checks_fail_on_an_empty_table(browser, site, tmp_path):
    out, recs = site
    _, rows, _ = table_rows(recs["runs"])
    page = (out / "index.html").read_text()
    start, end = page.index("<tbody>", page.index('id="all-0"')), page.index("</tbody>", page.index('id="all-0"'))
    broken = tmp_path / "empty"
    shutil.copytree(out, broken)
    (broken / "index.html").write_text(page[:start + len("<tbody>")] + page[end:])
    problems = page_problems(browser, broken / "index.html", "all-0", len(rows))
    assert problems == [f"table all-0: 0 rows shown, expected {len(rows)}"]
