"""The generated pages in a real browser: headless Chromium (Debian's, via Playwright) opens them from disk.

Checks what only a browser can: no console errors, every chart drawn, the leaderboard's row
count, sorting and filtering, and that hostile record text stays text. Screenshots of each
page go to ``test-output/dashboard/<case>/`` at the repository root.

Cases: ``generated`` (63 records from tests/factories.py, hostile names and a corrupt file
among them), ``single`` (one run) and ``results`` (the repository's own ``results/``
folder, e.g. after ``make eval``; override with HARNESS_RESULTS), the last included
whenever that folder holds records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, sync_playwright

from harness.dashboard import build_dashboard
from harness.dashboard.data import hardware_label, model_label
from harness.record.run_record import RunRecord
from harness.storage.store import load_records
from tests.factories import T0, generate_results, make_record, write_run
from tests.pagedata import chart_specs, table_rows

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "dashboard"
CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REAL_RESULTS = Path(os.environ.get("HARNESS_RESULTS", ROOT / "results"))
XSS_MODEL = "<img src=x onerror=alert(1)>"

CASES = ["generated", "single"] + (["results"] if any((REAL_RESULTS / "runs").glob("*/record.json")) else [])


@dataclass
class Built:
    name: str
    out: Path
    records: list[RunRecord]
    shots: Path
    visited: list[str] = field(default_factory=list)

    @property
    def expected_rows(self) -> int:
        """Leaderboard rows: (model, suite, hardware) triples with a successful run."""
        return len(
            {
                (model_label(r), r.suite.name, hardware_label(r.environment))
                for r in self.records
                if r.status == "ok"
            }
        )


def _generated(base: Path) -> tuple[Path, list[RunRecord]]:
    results = base / "results"
    records = generate_results(results, 60, n_models=8)
    hostile = make_record(
        XSS_MODEL,
        "smoke",
        started_at=T0 + timedelta(days=30),
        hardware="cpu",
        accuracy={"harness_capitals": 0.5, "harness_opposites": 0.4, "harness_arithmetic": 0.2},
    )
    failed = make_record(
        "always-fails",
        "smoke",
        status="failed",
        accuracy={},
        scenarios={},
        error="<script>alert('err')</script> engine exited with code 1",
        started_at=T0 + timedelta(days=31),
    )
    for rec in (hostile, failed):
        write_run(results, rec)
    gpu = make_record(
        "gpu-telemetry",
        "standard",
        hardware="h100",
        started_at=T0 + timedelta(days=32),
        scenarios={
            "c1-512-128": {"concurrency": 1, "input_tokens": 512, "output_tokens": 128, "num_requests": 32}
        },
    )
    write_run(results, gpu, gpu_samples=True)
    (results / "runs" / "corrupt").mkdir()
    (results / "runs" / "corrupt" / "record.json").write_text('{"run_id": ')
    return results, [*records, hostile, failed, gpu]


@pytest.fixture(scope="module", params=CASES)
def built(request: pytest.FixtureRequest) -> Iterator[Built]:
    base = Path(tempfile.mkdtemp(prefix="dashboard-browser-"))
    if request.param == "generated":
        results, records = _generated(base)
    elif request.param == "single":  # what a first `make eval` leaves: one run of one model
        results, records = base / "results", [make_record("smollm2-135m", "smoke")]
        write_run(results, records[0])
    else:
        results, records = REAL_RESULTS, load_records(REAL_RESULTS).records
    out = base / "dashboards"
    report = build_dashboard(results, out)
    assert report.runs == len(records)
    shots = SHOTS / request.param
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    yield Built(request.param, out, records, shots)
    print(f"\nscreenshots of {request.param}: {shots}")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000},
        )
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Opened:
    page: Page
    errors: list[str]
    dialogs: list[str]


def open_page(ctx: BrowserContext, built: Built, rel: str) -> Opened:
    """Open a page from disk, wait for its charts, and fail on any console error, page error or dialog."""
    page = ctx.new_page()
    errors: list[str] = []
    dialogs: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"console.{msg.type}: {msg.text}")

    def on_dialog(dialog: Dialog) -> None:  # an alert() from injected markup would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("dialog", on_dialog)
    path, _, fragment = rel.partition("#")
    page.goto((built.out / path).as_uri() + (f"#{fragment}" if fragment else ""))
    page.wait_for_load_state("load")
    charts = page.locator("div.chart")
    n = charts.count()
    if n:
        page.wait_for_function(
            "n => document.querySelectorAll('div.chart[data-rendered=\"1\"] .main-svg').length >= n",
            arg=n,
            timeout=20_000,
        )
    assert errors == [], errors
    assert dialogs == [], dialogs
    for i in range(n):
        assert charts.nth(i).locator(".main-svg").count() > 0, (
            f"{rel}: chart {charts.nth(i).get_attribute('id')}"
        )
        assert charts.nth(i).bounding_box()["height"] > 100  # type: ignore[index]
    return Opened(page, errors, dialogs)


def shoot(opened: Opened, built: Built, name: str) -> None:
    opened.page.screenshot(path=str(built.shots / f"{name}.png"), full_page=True)
    assert (built.shots / f"{name}.png").stat().st_size > 10_000
    assert opened.errors == [] and opened.dialogs == [], (opened.errors, opened.dialogs)


def column(page: Page, table: str, key: str) -> list[str]:
    """The text of one column's cells (first line only, i.e. without ± or σ lines)."""
    idx = page.evaluate(
        """([table, key]) => Array.from(document.querySelectorAll(`#${table} thead th`))
             .filter(th => !th.hidden).findIndex(th => th.dataset.key === key)""",
        [table, key],
    )
    assert idx >= 0, f"no visible column {key} in {table}"
    return page.evaluate(
        """([table, idx]) => Array.from(document.querySelectorAll(`#${table} tbody tr`))
             .map(tr => tr.children[idx].firstChild.textContent)""",
        [table, idx],
    )


def as_numbers(cells: list[str]) -> list[float]:
    return [float(c.replace(",", "").split()[0]) for c in cells if c != "—"]


def test_index_leaderboard_sort_filter_and_charts(browser: BrowserContext, built: Built) -> None:
    o = open_page(browser, built, "index.html")
    page = o.page
    page.locator("#cross-suite > summary").click()  # the one-table view is folded away, unranked
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == built.expected_rows > 0
    assert (
        page.locator("#leaderboard .row-count").inner_text()
        == f"Showing {built.expected_rows} of {built.expected_rows}"
    )
    # Each suite with a leaderboard row has its comparison charts.
    suites = {r.suite.name for r in built.records if r.status == "ok"}
    assert page.locator("section.suite").count() == len(suites)
    assert page.locator("div.chart[id^='chart-acc-tps-']").count() + page.locator(
        "[data-no-chart^='chart-acc-tps-']"
    ).count() == len(suites)
    shoot(o, built, "index")

    # Sorting by throughput: best first, then reversed; missing values stay last.
    before = column(page, "leaderboard", "model")
    page.locator("#leaderboard th[data-key='tps'] button").click()
    assert page.locator("#leaderboard th[data-key='tps']").get_attribute("aria-sort") == "descending"
    tps = as_numbers(column(page, "leaderboard", "tps"))
    assert tps == sorted(tps, reverse=True)
    page.locator("#leaderboard th[data-key='tps'] button").click()
    assert page.locator("#leaderboard th[data-key='tps']").get_attribute("aria-sort") == "ascending"
    assert as_numbers(column(page, "leaderboard", "tps")) == sorted(tps)
    if len(set(tps)) > 1:
        assert column(page, "leaderboard", "model") != before
    page.locator("#leaderboard th[data-key='model'] button").click()
    models = column(page, "leaderboard", "model")
    assert models == sorted(models, key=lambda s: s.lower()) or models == sorted(models)

    # Filtering by text hides rows; clearing it brings them back.
    search = page.locator("#leaderboard input.filter-text")
    search.fill("zz-no-such-model-zz")
    assert rows.count() == 0 and page.locator("#leaderboard p.empty").is_visible()
    search.fill("")
    assert rows.count() == built.expected_rows
    first_model = min(model_label(r) for r in built.records if r.status == "ok")
    search.fill(first_model)
    n_first = len(
        {
            (r.suite.name, hardware_label(r.environment))
            for r in built.records
            if r.status == "ok" and model_label(r) == first_model
        }
    )
    assert rows.count() >= n_first
    search.fill("")

    # Filtering by suite and by hardware.
    for name, key in (
        ("suite", lambda r: r.suite.name),
        ("hardware", lambda r: hardware_label(r.environment)),
    ):
        value = sorted({key(r) for r in built.records if r.status == "ok"})[0]
        page.locator(f"#leaderboard select[data-filter='{name}']").select_option(value)
        want = len(
            {
                (model_label(r), r.suite.name, hardware_label(r.environment))
                for r in built.records
                if r.status == "ok" and key(r) == value
            }
        )
        assert rows.count() == want
        assert set(column(page, "leaderboard", name)) == {value}
        page.locator(f"#leaderboard select[data-filter='{name}']").select_option("")
    assert rows.count() == built.expected_rows

    # Picking a scenario shows that scenario's figures; rows without it show them as missing.
    scenario = page.locator("#leaderboard select.scenario-select option").nth(1).get_attribute("value")
    assert scenario
    page.locator("#leaderboard select.scenario-select").select_option(scenario)
    having = {
        (model_label(r), r.suite.name, hardware_label(r.environment))
        for r in built.records
        if r.status == "ok" and scenario in r.performance
    }
    cells = column(page, "leaderboard", "tps")
    assert len(as_numbers(cells)) == len(having)
    assert cells.count("—") == built.expected_rows - len(having)
    assert o.errors == [] and o.dialogs == []
    page.close()


def test_hostile_record_text_renders_as_text(browser: BrowserContext, built: Built) -> None:
    if built.name != "generated":
        # The real results hold no hostile names; their pages are checked by the other tests.
        assert not any("<" in model_label(r) for r in built.records)
        return
    o = open_page(browser, built, "index.html")
    page = o.page
    page.locator("#cross-suite > summary").click()
    assert page.locator("img").count() == 0
    cell = page.locator("#leaderboard tbody td a", has_text=XSS_MODEL)
    assert cell.count() == 1 and cell.inner_text() == XSS_MODEL
    # In charts (legends, axis labels) the name is text too.
    assert page.locator("div.chart svg text", has_text=XSS_MODEL).count() >= 1
    # Its run page and the failed run's error.
    href = cell.get_attribute("href")
    assert href is not None
    page.close()
    runs = open_page(browser, built, "runs.html")
    err = runs.page.locator("#runs tbody td", has_text="<script>alert('err')</script>")
    assert err.count() == 1
    assert runs.page.locator("img").count() == 0
    shoot(runs, built, "runs")
    runs.page.close()
    model = open_page(browser, built, href)
    assert model.page.locator("h1").inner_text().strip() == XSS_MODEL
    assert model.page.locator("img").count() == 0
    shoot(model, built, "model-hostile")
    model.page.close()


def test_run_list_counts_and_failed_filter(browser: BrowserContext, built: Built) -> None:
    o = open_page(browser, built, "runs.html#status=failed")
    page = o.page
    n_failed = sum(r.status == "failed" for r in built.records)
    assert page.locator("#runs tbody tr").count() == n_failed
    assert page.locator("#runs select[data-filter='status']").input_value() == "failed"
    assert page.locator("#runs p.empty").is_visible() == (n_failed == 0)
    page.locator("#runs select[data-filter='status']").select_option("")
    assert page.locator("#runs tbody tr").count() == len(built.records)
    started = column(page, "runs", "started")
    assert started == sorted(started, reverse=True)
    if n_failed:
        assert page.locator("#runs tbody tr.failed").count() == n_failed
    shoot(o, built, "runs-all")
    page.close()


DRAWN = "id => document.getElementById(id).data.map(t => [t.x, t.y, t.customdata])"


def test_history_and_model_pages(browser: BrowserContext, built: Built) -> None:
    """Lines and rows come from the shards' data files: Chromium draws what the Python reader of
    those files (tests/pagedata.py) expects, every point in time order."""
    o = open_page(browser, built, "history.html")
    assert o.page.locator("div.chart").count() >= 1
    expected = chart_specs(built.out / "history.html")
    for chart, spec in expected.items():
        drawn = o.page.evaluate(DRAWN, chart)
        assert drawn == [[t["x"], t["y"], t["customdata"]] for t in spec["data"]], chart
        assert all(x == sorted(x) for x, _, _ in drawn)
    acc = sum(
        len(t["x"]) for c, s in expected.items() if c.startswith("chart-history-acc-") for t in s["data"]
    )
    assert acc == sum(r.status == "ok" and bool(r.accuracy) for r in built.records)
    shoot(o, built, "history")
    o.page.close()
    models = sorted((built.out / "models").glob("*.html"))
    assert len(models) == len({model_label(r) for r in built.records})
    for page in models[:3]:
        o = open_page(browser, built, f"models/{page.name}")
        rows = table_rows(page, "model-runs")
        assert o.page.locator("#model-runs tbody tr").count() == len(rows) >= 1
        assert all((page.parent / r["run_href"]).is_file() for r in rows)
        for chart, spec in chart_specs(page).items():
            assert o.page.evaluate(DRAWN, chart) == [[t["x"], t["y"], t["customdata"]] for t in spec["data"]]
        shoot(o, built, "model")
        o.page.close()


def test_run_detail_pages(browser: BrowserContext, built: Built) -> None:
    ok = [r for r in built.records if r.status == "ok" and "<" not in r.model.preset]
    picks = {"run": ok[0], "run-latest": ok[-1]}
    for name, match in (
        ("run-gpu", lambda r: r.model.preset == "gpu-telemetry"),
        ("run-failed", lambda r: r.status == "failed"),
    ):
        found = [r for r in built.records if match(r)]
        if found:
            picks[name] = found[0]
    for name, rec in picks.items():
        page_file = next((built.out / "runs").glob(f"{rec.run_id}*.html"))
        o = open_page(browser, built, f"runs/{page_file.name}")
        page = o.page
        assert rec.run_id in page.locator("p.context").inner_text()
        assert page.locator("h2", has_text="Provenance").count() == 1
        if rec.performance and any(s.requests_path for s in rec.performance.values()):
            assert page.locator("#chart-latency-cdf .main-svg").count() > 0
        if name == "run-gpu":
            assert page.locator("#chart-gpu .main-svg").count() > 0
        if rec.status == "failed":
            assert page.locator(".error-box").inner_text() == rec.error
        shoot(o, built, name)
        page.close()


def test_architecture_page(browser: BrowserContext, built: Built) -> None:
    """Cache and parameter charts always; roofline and published-score charts where runs have them."""
    index = open_page(browser, built, "index.html")
    index.page.locator("header nav a", has_text="Architecture").click()
    index.page.wait_for_load_state("load")
    assert index.page.url.endswith("/architecture.html")
    index.page.close()

    o = open_page(browser, built, "architecture.html")  # every chart drawn, no console errors
    page = o.page
    assert page.locator("header nav a.active").inner_text() == "Architecture"
    for chart in ("chart-arch-kv", "chart-arch-params"):
        assert page.locator(f"#{chart} .main-svg").count() > 0, chart
    # Every preset has a row in the KV chart.
    assert page.locator("#chart-arch-kv .yaxislayer-above .ytick").count() >= 15
    assert page.locator("img").count() == 0
    ok = [r for r in built.records if r.status == "ok"]
    cpu_runs = [r for r in ok if not r.environment.gpus]
    if cpu_runs:  # CPU runs are listed with their reason, never drawn against a missing roofline
        reasons = page.locator("#no-roofline + p + ul.reasons").inner_text()
        assert "no roofline entry for this hardware (CPU:" in reasons or "no analytics section" in reasons
    if built.name == "generated":
        # Mistral 7B and SmolLM2 ran the standard suite on an H100: both have a roofline, and
        # Mistral has published scores to compare with.
        bars = page.locator("#chart-arch-roofline .ytick")
        labels = [bars.nth(i).text_content() or "" for i in range(bars.count())]
        assert any(label.startswith("mistral-7b") for label in labels), labels
        assert all("CPU" not in label for label in labels), labels
        assert page.locator("#chart-arch-reported .main-svg").count() > 0
        assert page.locator("#reported details table tbody tr").count() == 6
    shoot(o, built, "architecture")
    page.close()

    # The run page of a run with published scores shows its comparison table.
    mistral = [r for r in ok if r.model.preset == "mistral-7b" and r.suite.name == "standard"]
    if mistral:
        page_file = next((built.out / "runs").glob(f"{mistral[-1].run_id}*.html"))
        run = open_page(browser, built, f"runs/{page_file.name}")
        assert run.page.locator("#reported table.plain tbody tr").count() == 6
        assert run.page.locator("#architecture").inner_text().count("of the roofline") == 1
        shoot(run, built, "run-reported")
        run.page.close()
