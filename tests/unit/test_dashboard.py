"""The dashboard builder: what it derives from records, what it writes, and how it treats bad input."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from harness.arch import record_analytics
from harness.cli import main
from harness.dashboard import archfigures as AF
from harness.dashboard import build_dashboard
from harness.dashboard import figures as F
from harness.dashboard.archdata import NO_ANALYTICS, arch_rows, reported_view, roofline_view
from harness.dashboard.data import (
    Palette,
    TaskView,
    accuracy_average,
    build_views,
    hardware_label,
    pareto_front,
    row_labels,
    slug,
)
from harness.dashboard.html import json_text
from harness.dashboard.pages import index_page
from harness.dashboard.runpage import run_page
from harness.dashboard.shards import Overview
from harness.model.presets import get_preset
from harness.record.analytics import RecordAnalytics
from harness.record.run_record import SCHEMA_VERSION
from tests.factories import (
    T0,
    environment,
    generate_results,
    make_record,
    make_scenario,
    task_result,
    write_run,
)
from tests.pagedata import chart_specs, embedded, table_rows

XSS_MODEL = "<img src=x onerror=alert(1)>"
XSS_SUITE = '"><script>alert("suite")</script>'
XSS_ERROR = "</script><script>alert('error')</script> & <b>bold</b>"


# ---------------------------------------------------------------- pure derivations


def test_hardware_label_names_gpus_or_cpu() -> None:
    assert hardware_label(environment("h100")) == "1× NVIDIA H100 80GB HBM3"
    assert hardware_label(environment("cpu")) == "CPU: AMD EPYC 7B13 (2 cores)"
    assert hardware_label(environment("cpu", cpu_model=None)) == "unknown hardware"
    two = environment("h100", gpus=list(environment("h100").gpus) * 2)
    assert hardware_label(two) == "2× NVIDIA H100 80GB HBM3"


def test_accuracy_average_and_its_standard_error() -> None:
    avg, se = accuracy_average([TaskView(0.5, 0.03, "acc"), TaskView(0.7, 0.04, "acc")])
    assert avg == pytest.approx(0.6)
    assert se == pytest.approx(math.sqrt(0.03**2 + 0.04**2) / 2)
    # A task without stderr: the mean stands, its spread is unknown rather than understated.
    assert accuracy_average([TaskView(0.5, None, "acc"), TaskView(0.7, 0.04, "acc")]) == (
        pytest.approx(0.6),
        None,
    )
    assert accuracy_average([]) == (None, None)


def test_pareto_front_in_both_directions() -> None:
    pts = [(10.0, 0.5), (20.0, 0.4), (15.0, 0.6), (5.0, 0.55), (25.0, 0.3), (12.0, 0.45)]
    # Higher throughput and higher accuracy are better: (15, .6), (20, .4), (25, .3).
    assert pareto_front(pts) == [2, 1, 4]
    # Lower energy is better: (5, .55) and (15, .6); (10, .5) is beaten by (5, .55).
    assert pareto_front(pts, x_higher=False) == [3, 2]
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([]) == []


def test_energy_per_token_only_where_measured() -> None:
    gpu = make_record(
        hardware="h100", scenarios={"c1": {"num_requests": 10, "output_tokens": 50, "energy_j": 100.0}}
    )
    cpu = make_record(hardware="cpu", scenarios={"c1": {"num_requests": 10, "output_tokens": 50}})
    v_gpu, v_cpu = build_views([gpu, cpu.model_copy(update={"run_id": "other"})])
    assert v_gpu.scenarios["c1"].energy_per_token_j == pytest.approx(100.0 / 500)
    assert v_cpu.scenarios["c1"].energy_per_token_j is None
    assert v_gpu.peak_gpu_memory_bytes == 61 * 2**30
    assert v_cpu.peak_gpu_memory_bytes is None


def test_leaderboard_takes_latest_successful_run_per_model_suite_hardware() -> None:
    recs = [
        make_record("m1", started_at=T0, accuracy={"t": 0.5}),
        make_record("m1", started_at=T0 + timedelta(days=1), accuracy={"t": 0.6}),
        make_record("m1", started_at=T0 + timedelta(days=2), status="failed", error="boom", accuracy={}),
        make_record("m1", started_at=T0, hardware="h100", accuracy={"t": 0.9}),
        make_record("m2", started_at=T0, status="failed", error="boom", accuracy={}),
    ]
    rows = Overview.of_views(build_views(recs)).rows
    assert [(r.latest.model, r.latest.hardware, r.latest.acc_avg) for r in rows] == [
        ("m1", "1× NVIDIA H100 80GB HBM3", 0.9),
        ("m1", "CPU: AMD EPYC 7B13 (2 cores)", 0.6),
    ]
    cpu_row = rows[1]
    assert (cpu_row.n_runs, cpu_row.n_failed) == (3, 1)
    assert cpu_row.last_failed is not None and cpu_row.last_failed.error == "boom"
    assert rows[0].last_failed is None


def test_page_names_are_safe_and_unique() -> None:
    a = make_record(run_id="../../etc/passwd")
    b = make_record(run_id="..-..-etc-passwd", started_at=T0 + timedelta(seconds=1))
    c = make_record(run_id="../../etc/passwd", started_at=T0 + timedelta(seconds=2))
    pages = [v.page for v in build_views([a, b, c])]
    assert len(set(pages)) == 3
    assert all(re.fullmatch(r"runs/[A-Za-z0-9._-]+\.html", p) and ".." not in p[5:] for p in pages), pages
    assert slug("") == "_"


def test_row_labels_add_suite_and_hardware_only_when_they_vary() -> None:
    views = build_views([make_record("a"), make_record("b", started_at=T0 + timedelta(1))])
    assert row_labels(views) == ["a", "b"]
    views = build_views([make_record("a"), make_record("a", hardware="h100", started_at=T0 + timedelta(1))])
    assert row_labels(views) == ["a · CPU: AMD EPYC 7B13 (2 cores)", "a · 1× NVIDIA H100 80GB HBM3"]


def test_json_for_script_blocks_cannot_close_the_block_and_has_no_nan() -> None:
    text = json_text({"s": "</script><!-- & \u2028", "x": math.nan, "y": [math.inf, 1.5]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"s": "</script><!-- & \u2028", "x": None, "y": [None, 1.5]}
    assert json_text({"v": 0.123456789}, 4) == '{"v":0.1235}'


def test_every_chart_kind_is_a_valid_plotly_figure(tmp_path: Path) -> None:
    recs = generate_results(tmp_path / "results", 48, n_models=6)
    write_run(
        tmp_path / "results",
        make_record("gpu-model", hardware="h100", started_at=T0 + timedelta(days=9)),
        gpu_samples=True,
    )
    write_run(  # a preset with published scores, on a GPU with a roofline
        tmp_path / "results",
        make_record("mistral-7b", "standard", hardware="h100", started_at=T0 + timedelta(10)),
    )
    report = build_dashboard(tmp_path / "results", tmp_path / "out")
    assert report.runs == len(recs) + 2
    seen: list[str] = []
    for page in report.pages:
        for chart, spec in chart_specs(page).items():
            F.validate(spec)  # plotly raises on an unknown property or a bad value
            seen.append(chart)
    kinds = (
        "chart-acc-tps-",
        "chart-acc-energy-",
        "chart-heatmap-",
        "chart-load-concurrency-",
        "chart-load-rate-",
        "chart-history-",
        "chart-model-",
        "chart-latency-cdf",
        "chart-gpu",
        "chart-arch-kv",
        "chart-arch-params",
        "chart-arch-roofline",
        "chart-arch-reported",
    )
    missing = [k for k in kinds if not any(c.startswith(k) for c in seen)]
    assert not missing, missing


# ---------------------------------------------------------------- building pages


def test_one_run_gives_a_complete_offline_dashboard(tmp_path: Path) -> None:
    rec = make_record("smollm2-135m", accuracy={"harness_capitals": (0.62, 0.05)})
    write_run(tmp_path / "results", rec)
    report = build_dashboard(tmp_path / "results", tmp_path / "out")

    out = tmp_path / "out"
    assert (report.runs, report.failed_runs, report.models, report.leaderboard_rows) == (1, 0, 1, 1)
    assert report.warnings == []
    names = {p.relative_to(out).as_posix() for p in report.pages}
    assert {"index.html", "history.html", "runs.html", f"runs/{rec.run_id}.html"} <= names
    assert any(n.startswith("models/smollm2-135m") for n in names)
    # plotly.js once, beside the pages; pages reference it relatively, nothing from the network.
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    assert [p.name for p in out.rglob("plotly*.js")] == ["plotly.min.js"]
    index = (out / "index.html").read_text()
    run_page = (out / f"runs/{rec.run_id}.html").read_text()
    assert '<script src="plotly.min.js" defer>' in index
    assert '<script src="../plotly.min.js" defer>' in run_page
    for page in report.pages:
        text = page.read_text()
        # Nothing is loaded from the network (a plain link to a paper, <a href>, loads nothing).
        assert not re.search(r"""(src=|<link[^>]*href=)["']?(https?:)?//""", text), page
        assert len(text) < 500_000, page  # no page embeds plotly.js

    lb = embedded(index, "leaderboard-data")
    assert len(lb["rows"]) == 1
    row = lb["rows"][0]
    assert row["acc"]["harness_capitals"] == [0.62, 0.05, 100]  # value, stderr, documents
    assert row["perf"]["c1-128-32"]["jpt"] is None  # CPU run: no energy, and not 0
    assert row["run_href"] == f"runs/{rec.run_id}.html"
    assert (out / row["run_href"]).is_file() and (out / row["model_href"]).is_file()
    assert "0.620" in run_page and "± 0.050" in run_page


def test_thousand_runs(tmp_path: Path) -> None:
    recs = generate_results(tmp_path / "results", 1000, requests=False)
    report = build_dashboard(tmp_path / "results", tmp_path / "out")
    out = tmp_path / "out"
    failed = sum(r.status == "failed" for r in recs)
    assert failed == 40
    assert (report.runs, report.failed_runs, report.models) == (1000, failed, 12)
    ok_keys = {(r.model.preset, r.suite.name) for r in recs if r.status == "ok"}
    assert report.leaderboard_rows == len(ok_keys) == 24
    assert len(list((out / "runs").glob("*.html"))) == 1000
    assert len(list((out / "models").glob("*.html"))) == 12
    runs = table_rows(out / "runs.html", "runs")
    assert len(runs) == 1000 and sum(r["status"] == "failed" for r in runs) == failed
    assert runs[0]["started"] > runs[-1]["started"]  # newest first
    index = (out / "index.html").read_text()
    assert len(embedded(index, "leaderboard-data")["rows"]) == 24
    # The index grows with leaderboard rows, not with runs.
    assert report.index_bytes < 400_000
    # History has one point per successful run in each suite's accuracy chart.
    history = out / "history.html"
    points = sum(
        len(t["y"])
        for c, s in chart_specs(history).items()
        if c.startswith("chart-history-acc-")
        for t in s["data"]
    )
    assert points == 1000 - failed


def test_bad_files_are_warned_about_and_failed_runs_listed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_run(results, make_record("good"))
    failed = make_record(
        "broken-model",
        status="failed",
        error="engine exited with code 1: CUDA out of memory",
        accuracy={},
        scenarios={},
        started_at=T0 + timedelta(hours=1),
    )
    write_run(results, failed)
    (results / "runs" / "garbage").mkdir(parents=True)
    (results / "runs" / "garbage" / "record.json").write_text("{not json")
    (results / "runs" / "future").mkdir()
    bad = json.loads(make_record("x").model_dump_json())
    bad["schema_version"] = SCHEMA_VERSION + 1  # written by a newer harness with a breaking change
    (results / "runs" / "future" / "record.json").write_text(json.dumps(bad))
    (results / "runs" / "nostatus").mkdir()
    bad["schema_version"] = SCHEMA_VERSION
    del bad["status"]
    (results / "runs" / "nostatus" / "record.json").write_text(json.dumps(bad))
    # A per-request table that is not parquet.
    good_dir = results / "runs" / make_record("good").run_id
    (good_dir / "requests" / "c1-128-32.parquet").write_bytes(b"not parquet")

    report = build_dashboard(results, tmp_path / "out")
    assert (report.runs, report.failed_runs, report.leaderboard_rows) == (2, 1, 1)
    joined = "\n".join(report.warnings)
    assert len(report.warnings) == 4, joined
    for name in ("garbage", "future", "nostatus", "c1-128-32.parquet"):
        assert name in joined
    index = (tmp_path / "out" / "index.html").read_text()
    assert "4 unreadable file(s) skipped" in index and "garbage" in index
    assert '<span class="badge badge-failed">failed</span>' in index
    runs = table_rows(tmp_path / "out" / "runs.html", "runs")
    assert [(r["model"], r["status"]) for r in runs] == [("broken-model", "failed"), ("good", "ok")]
    assert runs[0]["error"].startswith("engine exited")
    failed_page = (tmp_path / "out" / runs[0]["run_href"]).read_text()
    assert "CUDA out of memory" in failed_page and "No accuracy results" in failed_page


def hostile_analytics() -> RecordAnalytics:
    """Real analytics of a GPU run with every free-text field replaced by markup."""
    rec = make_record("mistral-7b", "standard", hardware="h100")
    assert rec.analytics is not None
    a = rec.analytics.model_dump(mode="json")
    a["decode"]["scenario"] = "<i>scen</i>"
    a["roofline"]["gpu_name"] = XSS_MODEL
    cmp = a["reported_vs_measured"].pop("arc_challenge")
    a["reported_vs_measured"]["<b>task</b>"] = {
        **cmp,
        "task": "<b>task</b>",
        "source": XSS_ERROR,
        "settings": XSS_SUITE,
        "note": XSS_ERROR,
        "metric": "<i>m</i>",
    }
    return RecordAnalytics.model_validate(a)


def test_record_text_is_escaped_everywhere(tmp_path: Path) -> None:
    results = tmp_path / "results"
    rec = make_record(
        XSS_MODEL,
        XSS_SUITE,
        status="failed",
        error=XSS_ERROR,
        run_id="x<script>",
        accuracy={"<b>task</b>": 0.5},
        scenarios={"<i>scen</i>": {"concurrency": 2}},
    )
    write_run(results, rec)
    write_run(
        results,
        make_record(
            XSS_MODEL,
            XSS_SUITE,
            accuracy={"<b>task</b>": 0.5},
            scenarios={"<i>scen</i>": {"concurrency": 2}},
            started_at=T0 - timedelta(1),
            analytics=hostile_analytics(),
        ),
    )
    cpu = make_record(XSS_MODEL, "other", hardware="cpu", started_at=T0 - timedelta(2))
    analytics = record_analytics(
        get_preset("tiny-llama"), performance=cpu.performance, environment=cpu.environment
    )
    assert analytics.decode is not None
    analytics = analytics.model_copy(
        update={"decode": analytics.decode.model_copy(update={"reason": XSS_ERROR})}
    )
    write_run(results, cpu.model_copy(update={"analytics": analytics}))
    report = build_dashboard(results, tmp_path / "out")
    assert report.leaderboard_rows == 2
    assert any(p.name == "architecture.html" for p in report.pages)
    for page in report.pages:
        text = page.read_text()
        for raw in ("<img", "<script>alert", "<b>task", "<i>scen", "<i>m", "<b>bold", "x<script>"):
            assert raw not in text, (page.name, raw)
    run_page = next(p for p in report.pages if p.parent.name == "runs" and "x_script" in p.name).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in run_page
    assert (
        "&lt;/script&gt;&lt;script&gt;alert(&#x27;error&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        in run_page
    )
    # Data blocks round-trip to the exact text, which the page script inserts as text.
    lb = embedded((tmp_path / "out" / "index.html").read_text(), "leaderboard-data")
    assert {r["model"] for r in lb["rows"]} == {XSS_MODEL} and XSS_SUITE in {r["suite"] for r in lb["rows"]}
    # The architecture page shows the hostile model (known only from its runs) and its texts, escaped.
    arch = (tmp_path / "out" / "architecture.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in arch and "&lt;b&gt;task&lt;/b&gt;" in arch
    assert "&lt;/script&gt;&lt;script&gt;alert(&#x27;error&#x27;)" in arch  # a roofline reason
    for spec in chart_specs(arch).values():
        F.validate(spec)
        assert "<img" not in json.dumps(spec) and "<b>task" not in json.dumps(spec)


def test_nan_figures_show_as_missing() -> None:
    # Stored records cannot hold NaN (JSON has none), but records built in memory can.
    rec = make_record(
        "nan-model",
        accuracy={"t": (math.nan, math.nan)},
        scenarios={"c1": make_scenario("c1", median_ttft_ms=math.inf)},
    )
    views = build_views([rec])
    html = index_page(Overview.of_views(views), [], Palette(["nan-model"]), "now") + run_page(
        views[0], {}, None, [], "now"
    )
    row = embedded(html, "leaderboard-data")["rows"][0]
    assert row["acc"]["t"] == [None, None, 100] and row["acc_avg"] is None
    assert row["perf"]["c1"]["ttft50"] is None
    chart_specs(html)  # parses strictly: no NaN/Infinity constants in any chart
    assert not re.search(r"\b(nan|inf|infinity)\b", html.replace("nan-model", ""), re.I)


def test_pages_of_deleted_runs_are_removed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    a, b = make_record("a"), make_record("b", started_at=T0 + timedelta(hours=1))
    write_run(results, a)
    run_b = write_run(results, b)
    out = tmp_path / "out"
    (out / "notes.txt").parent.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    build_dashboard(results, out)
    assert (out / f"runs/{b.run_id}.html").is_file()
    import shutil

    shutil.rmtree(run_b)
    report = build_dashboard(results, out)
    assert not (out / f"runs/{b.run_id}.html").exists()
    assert (out / f"runs/{a.run_id}.html").is_file()
    assert len(list((out / "models").glob("*.html"))) == report.models == 1
    assert (out / "notes.txt").read_text() == "mine"


def test_paths_in_a_record_cannot_leave_its_run_folder(tmp_path: Path) -> None:
    secret = tmp_path / "results" / "secret.parquet"
    rec = make_record(scenarios={"c1": make_scenario("c1", requests_path="../../secret.parquet")})
    write_run(tmp_path / "results", rec, requests=False)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"ttft_ms": [1.0], "e2el_ms": [2.0]}), secret)
    report = build_dashboard(tmp_path / "results", tmp_path / "out")
    page = (tmp_path / "out" / f"runs/{rec.run_id}.html").read_text()
    assert "chart-latency-cdf-spec" not in page and "No per-request table for c1" in page
    assert report.warnings == []


def test_palette_keeps_one_colour_per_model() -> None:
    p = Palette(["b", "a", "b", "c"])
    assert p("a") != p("b") != p("c") and p("a") == Palette(["a", "z"])("a")
    assert len(set(Palette([f"m{i}" for i in range(20)]).colours.values())) == 20


# ---------------------------------------------------------------- architecture page


C1_512 = {"c1-512-128": {"concurrency": 1, "input_tokens": 512, "output_tokens": 128, "median_tpot_ms": 8.0}}


def test_roofline_view_with_and_without_a_roofline() -> None:
    gpu = make_record("mistral-7b", "standard", hardware="h100", scenarios=C1_512)
    cpu = make_record("smollm2-135m", hardware="cpu", started_at=T0 + timedelta(1))
    bare = make_record("not-a-preset", started_at=T0 + timedelta(2))
    assert bare.analytics is None
    v_gpu, v_cpu, v_bare = (roofline_view(v) for v in build_views([gpu, cpu, bare]))

    # An H100 SXM reads 3.35 TB/s; Mistral 7B reads its bf16 weights and a 576-token cache per token.
    assert v_gpu.has_roofline and v_gpu.reason is None
    assert v_gpu.measured_tps == pytest.approx(1000 / 8.0)
    weights = 7_241_732_096 * 2
    assert v_gpu.roofline_tps == pytest.approx(3.35e12 / (weights + 576 * 131_072), rel=1e-3)
    assert v_gpu.fraction == pytest.approx(v_gpu.measured_tps / v_gpu.roofline_tps)
    assert (v_gpu.gpu, v_gpu.context_tokens, v_gpu.scenario, v_gpu.fits) == (
        "H100 SXM5 80GB",
        576,
        "c1-512-128",
        True,
    )

    # On a CPU the speed is measured but there is no roofline, and the record says why.
    assert not v_cpu.has_roofline and v_cpu.roofline_tps is None and v_cpu.fraction is None
    assert v_cpu.measured_tps == pytest.approx(1000 / 8.0)
    assert v_cpu.reason == "no roofline entry for this hardware (CPU: AMD EPYC 7B13)"
    assert not v_bare.has_roofline and v_bare.reason == NO_ANALYTICS

    # The chart draws only the run with both figures: the CPU run is not a bar at 0.
    spec = AF.roofline_bars([v_gpu, v_cpu, v_bare], ["gpu", "cpu", "bare"])
    assert spec is not None
    F.validate(spec)
    (bars,) = spec["data"]
    assert bars["y"] == ["gpu"] and bars["x"] == [F.r4(v_gpu.fraction)]
    assert AF.roofline_bars([v_cpu, v_bare], ["cpu", "bare"]) is None


def test_arch_rows_cover_presets_and_models_known_only_from_runs() -> None:
    local = make_record("my-checkpoint", analytics=record_analytics(get_preset("tiny-mixtral")))
    views = build_views([local, make_record("mistral-7b", started_at=T0 + timedelta(1))])
    rows = {r["name"]: r for r in arch_rows(views)}
    assert rows["my-checkpoint"]["kind"] == "run" and rows["my-checkpoint"]["num_experts"] == 8
    assert rows["my-checkpoint"]["model_page"] == views[0].model_page
    assert rows["mistral-7b"]["kind"] == "hub" and rows["mistral-7b"]["runs"] == 1
    assert rows["llama2-13b"]["model_page"] is None and rows["llama2-13b"]["runs"] == 0
    kv = [r["kv_bytes_per_token"] for r in rows.values()]
    assert kv == sorted(kv, reverse=True)  # largest cache first, as the chart lists them

    kv_spec, params = AF.kv_bars(list(rows.values())), AF.param_bars(list(rows.values()))
    assert kv_spec is not None and params is not None
    F.validate(kv_spec)
    F.validate(params)
    # One bar per model as built (split by attention kind) and one for the full multi-head cache.
    mha, *built = kv_spec["data"]
    assert len(mha["y"]) == len(rows) == sum(len(t["y"]) for t in built)
    assert {t["name"] for t in built} == {"as built: MHA", "as built: GQA", "as built: MLA"}
    gqa = next(t for t in built if t["name"] == "as built: GQA")
    assert gqa["text"][gqa["y"].index("mistral-7b")] == "÷4 · window 4,096"
    moe = next(t for t in params["data"] if t["name"].endswith("mixture of experts"))
    assert {"mixtral-8x7b", "deepseek-v2-lite", "my-checkpoint"} <= set(moe["y"])
    assert "mistral-7b" not in moe["y"]


def test_measured_minus_reported() -> None:
    standard = make_record("mistral-7b", "standard", hardware="h100", accuracy={"mmlu": (0.62, 0.004)})
    rv = reported_view(build_views([standard])[0])
    (c,) = rv.comparisons
    assert (c.task, c.metric, c.reported, c.reported_shots, c.measured_shots) == ("mmlu", "acc", 0.6416, 5, 5)
    assert c.measured == 0.62 and c.measured_stderr == 0.004 and c.delta == pytest.approx(0.62 - 0.6416)
    assert c.comparable and c.z == pytest.approx((0.62 - 0.6416) / 0.004) and c.verdict == "5.4 SE below"
    assert rv.mean_delta == pytest.approx(c.delta) and not rv.computed_now and rv.message is None

    # A record written before analytics: compared now, with the scores this harness ships.
    old = standard.model_copy(update={"analytics": None})
    rv_old = reported_view(build_views([old])[0])
    assert rv_old.computed_now and rv_old.comparisons == rv.comparisons

    # Different shots: shown, but not comparable and left out of the mean.
    zero_shot = task_result("arc_challenge", (0.6, 0.014)).model_copy(update={"num_fewshot": 0})
    acc = {"arc_challenge": zero_shot}
    rec = make_record(
        "mistral-7b", "standard", analytics=record_analytics(get_preset("mistral-7b"), accuracy=acc)
    ).model_copy(update={"tasks": [zero_shot]})
    rv_shots = reported_view(build_views([rec])[0])
    assert not rv_shots.comparisons[0].comparable and rv_shots.mean_delta is None
    assert rv_shots.comparisons[0].verdict == "not comparable: shots differ: measured 0, published 25"

    # No published scores, and published scores for other tasks than the run's.
    none = reported_view(build_views([make_record("smollm2-135m")])[0])
    assert none.comparisons == [] and none.no_scores
    assert (
        none.message
        == "No published scores are shipped for smollm2-135m, so there is nothing to compare with."
    )
    other = reported_view(build_views([make_record("mistral-7b", "smoke")])[0])
    assert other.comparisons == [] and not other.no_scores
    assert other.message is not None and "this run measured none of those tasks" in other.message


def test_architecture_page_and_run_pages(tmp_path: Path) -> None:
    results = tmp_path / "results"
    gpu = make_record("mistral-7b", "standard", hardware="h100", scenarios=C1_512)
    cpu = make_record("smollm2-135m", hardware="cpu", started_at=T0 + timedelta(1))
    for rec in (gpu, cpu):
        write_run(results, rec)
    report = build_dashboard(results, tmp_path / "out")
    out = tmp_path / "out"

    # Every page links to the architecture page, relative to where it sits.
    for page in report.pages:
        prefix = "../" if page.parent != out else ""
        assert f'href="{prefix}architecture.html"' in page.read_text(), page

    arch = (out / "architecture.html").read_text()
    specs = chart_specs(arch)
    assert set(specs) == {"chart-arch-kv", "chart-arch-params", "chart-arch-roofline", "chart-arch-reported"}
    for spec in specs.values():
        F.validate(spec)
    roof = specs["chart-arch-roofline"]["data"][0]
    assert len(roof["y"]) == 1 and roof["y"][0].startswith("mistral-7b")
    assert roof["text"][0].startswith(f"{1000 / 8.0 / roofline_view(build_views([gpu])[0]).roofline_tps:.0%}")
    # The CPU run is listed with its reason and its measured speed, not charted.
    no_roof = arch[arch.index('id="no-roofline"') :]
    assert "no roofline entry for this hardware (CPU: AMD EPYC 7B13)" in no_roof
    assert "smollm2-135m" in no_roof and "(125 tok/s)" in no_roof
    # Sliding-window cap and MoE share in the facts table; models without published scores named once.
    assert "4 GiB without the window" in arch and "MoE: top-2 of 8 experts, 28% active" in arch
    assert "No published scores are shipped for" in arch and "smollm2-135m</a>, so their runs" in arch
    reported = specs["chart-arch-reported"]["data"]
    assert [t["x"] for t in reported] == [
        ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", "gsm8k"]
    ]

    # Run pages: the comparison table and the roofline line, or why there is none.
    gpu_page = (out / f"runs/{gpu.run_id}.html").read_text()
    start = gpu_page.index('id="reported"')
    section = gpu_page[start : gpu_page.index("</section>", start)]
    assert section.count("<tr>") == 1 + 6  # header and six tasks
    assert "Open LLM Leaderboard v1 (Hugging Face), 25-shot" in section and "± 0.020" in section
    assert f"{0.55 - 0.5998:+.3f}" in section  # factory arc_challenge 0.55 against the published 0.5998
    assert "% of the roofline" in gpu_page and "H100 SXM5 80GB" in gpu_page
    cpu_page = (out / f"runs/{cpu.run_id}.html").read_text()
    assert "No published scores are shipped for smollm2-135m" in cpu_page
    assert (
        "125 tok/s measured; not set against a roofline: no roofline entry for this hardware (CPU: AMD EPYC 7B13)"
        in cpu_page
    )

    # The leaderboard's mean delta over comparable tasks, missing (not 0) for a model without scores.
    rows = {r["model"]: r for r in embedded((out / "index.html").read_text(), "leaderboard-data")["rows"]}
    expected = reported_view(build_views([gpu])[0]).mean_delta
    assert rows["mistral-7b"]["rep"] == pytest.approx(expected, abs=1e-6)
    assert rows["smollm2-135m"]["rep"] is None


def test_architecture_page_without_runs(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    build_dashboard(tmp_path / "results", tmp_path / "out")
    arch = (tmp_path / "out" / "architecture.html").read_text()
    assert set(chart_specs(arch)) == {"chart-arch-kv", "chart-arch-params"}  # presets need no runs
    assert "No successful runs yet." in arch and "plotly.min.js" in arch


# ---------------------------------------------------------------- command line


def test_cli_builds_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "results", make_record())
    code = main(["dashboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "d")])
    assert code == 0
    assert (tmp_path / "d" / "index.html").is_file()
    out = capsys.readouterr().out
    assert "1 run(s) (0 failed), 1 model(s), 1 leaderboard row(s)" in out


def test_cli_missing_results_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "d")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_importing_the_package_does_not_import_plotly() -> None:
    code = "import harness.dashboard, harness.dashboard.cli, harness.cli, sys; print('plotly' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_empty_results_folder_gives_an_empty_dashboard(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    report = build_dashboard(tmp_path / "results", tmp_path / "out")
    assert (report.runs, report.leaderboard_rows, report.warnings) == (0, 0, [])
    index = report.index.read_text()
    assert embedded(index, "leaderboard-data")["rows"] == []
    assert "No runs yet" in index and "plotly.min.js" not in index  # no charts to draw


def test_vectorised_rounding_of_cdf_points_equals_r4() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.lognormal(3.0, 4.0, 20_000) * rng.choice([-1.0, 1.0], 20_000),
            [0.0, 1e-9, 0.5, 9999.5, 99995.0, 123456789.0, 1e300, -1e-300],
        ]
    )
    assert F._round4(values) == [F.r4(float(v)) for v in values]
    xs, ys = F._cdf([3.0, None, 1.0, float("nan"), 2.0])
    assert xs == [1.0, 2.0, 3.0] and ys == [0.3333, 0.6667, 1.0]
