"""How long `harness dashboard` takes over many runs, in full and incrementally, and how big it gets.

    python benchmarks/dashboard_scale.py [--runs 1000] [--large 10000] [--models 12] [--keep DIR]
                                         [--browser]

1. Generates ``--runs`` valid records (per-request tables, a failed run every 25) and builds
   the dashboard: cold (a new folder, plotly.js written), full again (``--full``: every page
   rewritten), with nothing changed, and after adding one run.
2. Adds runs up to ``--large`` (without per-request tables, so that generating them stays in
   minutes; their run pages say so), builds in full, then adds one run (with its tables) and
   builds incrementally: the figure the manifest is for.
   That is done three times (one run added each time), and once more through the command line
   (``harness dashboard`` in a new process, imports and all), as a CI job runs it. Between
   them, every file gets a new modification time with the same bytes (a fresh checkout of the
   results): records and tables are hashed, no page is rewritten.
3. For comparison, builds the dashboard of a single run, in this process and on the command line.

Each figure is wall seconds, and CPU seconds beside it (this process and the workers that write
run pages in parallel): on a shared machine the wall time also counts the other processes, the
CPU time mostly does not. The steps of a build follow in brackets (see
``harness.dashboard.build``: reading the manifest, checking records, checking tables and
assigning shards, run pages, shard files, model pages, overview pages, saving). With ``--browser``,
also times headless Chromium (/usr/bin/chromium) from opening index.html, history.html and
architecture.html to every chart drawn (over the ``--runs`` folder).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the run-page workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


STEPS = ("manifest", "scan", "plan", "run_pages", "shards", "model_pages", "overview", "save")


def timed(label: str, build: Any, results: Path, out: Path, **kw: Any) -> Any:
    """Run one build, print its figures, return its report."""
    c0, w0 = cpu_s(), time.perf_counter()
    report = build(results, out, **kw)
    wall, cpu = time.perf_counter() - w0, cpu_s() - c0
    t = report.timings_s
    steps = ", ".join(f"{k.replace('_', ' ')} {t[k + '_s']:.3f}" for k in STEPS)
    print(
        f"{label}: {wall:.3f} s wall, {cpu:.3f} s CPU [{steps}]; "
        f"{report.runs:,} runs, {len(report.pages):,} pages, "
        f"{len(report.rebuilt):,} rewritten, {report.leaderboard_rows} leaderboard rows, "
        f"{len(report.warnings)} warnings",
        flush=True,
    )
    return report


def touch_all(results: Path) -> int:
    """A new modification time on every file under ``results`` (as a fresh checkout or copy of
    it has); the number of files."""
    now = time.time_ns()
    n = 0
    for dirpath, _dirs, files in os.walk(results):
        for name in files:
            os.utime(os.path.join(dirpath, name), ns=(now, now))
            n += 1
    return n


CLI = "import sys; from harness.cli import main; sys.exit(main())"


def timed_cli(label: str, results: Path, out: Path) -> float:
    """``harness dashboard`` in a new process, as a CI job runs it: wall seconds."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "dashboard", "--results", str(results), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    print(
        f"{label}: {wall:.2f} s wall ({done.stdout.strip().splitlines()[-1].split(': ', 1)[-1]})", flush=True
    )
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=1000, help="runs with per-request tables (default 1000)")
    ap.add_argument("--large", type=int, default=10_000, help="total runs of the large case (0: skip it)")
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--keep", type=Path, help="build here (and keep it) instead of a temporary folder")
    ap.add_argument("--browser", action="store_true", help="also time page loads in headless Chromium")
    args = ap.parse_args()

    # The record factory lives with the tests; this script runs from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness.dashboard import build_dashboard
    from tests.factories import generate_results

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        results, out = base / "results", base / "dashboards"
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        generate_results(results, args.runs, n_models=args.models, durable=False)
        print(f"generated {args.runs:,} records with per-request tables in {time.perf_counter() - t0:.1f} s")
        n = args.runs
        timed(f"{n:,} runs, full build, cold", build_dashboard, results, out)
        report = timed(f"{n:,} runs, full build (--full)", build_dashboard, results, out, full=True)
        sizes = {p.name: p.stat().st_size for p in out.glob("*.*")}
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        timed(f"{n:,} runs, nothing changed", build_dashboard, results, out)
        generate_results(results, 1, n_models=args.models, first=n, durable=False)
        timed(f"{n:,} runs + 1 added, incremental", build_dashboard, results, out)
        print(f"index.html: {report.index_bytes:,} bytes")
        for name in ("history.html", "runs.html", "architecture.html", "manifest.json", "plotly.min.js"):
            print(f"{name}: {sizes.get(name, 0):,} bytes")
        print(f"whole folder: {total / 2**20:.1f} MiB")
        if args.browser:
            for name in ("index.html", "history.html", "runs.html", "architecture.html"):
                t_tables, t_charts = time_in_browser(out / name)
                print(
                    f"{name} in Chromium: tables filled {t_tables:.2f} s, all charts drawn {t_charts:.2f} s"
                )

        if args.large > n + 1:
            more = args.large - n - 1
            t0 = time.perf_counter()
            generate_results(results, more, n_models=args.models, first=n + 1, requests=False, durable=False)
            print(
                f"generated {more:,} more records (no per-request tables) in {time.perf_counter() - t0:.1f} s"
            )
            big = args.large
            timed(f"{big:,} runs, full build (--full)", build_dashboard, results, out, full=True)
            timed(f"{big:,} runs, nothing changed", build_dashboard, results, out)
            for i in range(3):
                generate_results(results, 1, n_models=args.models, first=big + i, durable=False)
                timed(f"{big + i:,} runs + 1 added, incremental", build_dashboard, results, out)
            touched = touch_all(results)
            timed(
                f"{big + 3:,} runs, all {touched:,} files touched, same bytes", build_dashboard, results, out
            )
            generate_results(results, 1, n_models=args.models, first=big + 3, durable=False)
            timed_cli(f"{big + 3:,} runs + 1 added, incremental, command line", results, out)
            print(f"manifest.json: {(out / 'manifest.json').stat().st_size:,} bytes")

        one, one_out = base / "one", base / "one-dashboard"
        shutil.rmtree(one, ignore_errors=True)
        shutil.rmtree(one_out, ignore_errors=True)
        generate_results(one, 1, n_models=args.models, durable=False)
        timed("1 run, full build, cold", build_dashboard, one, one_out)
        timed("1 run, full build (--full)", build_dashboard, one, one_out, full=True)
        shutil.rmtree(one_out)
        timed_cli("1 run, full build, cold, command line", one, one_out)
    return 0


def time_in_browser(page_path: Path, chromium: str = "/usr/bin/chromium") -> tuple[float, float]:
    """Seconds from navigation to the tables filled, and to every chart drawn (best of three loads)."""
    from playwright.sync_api import sync_playwright

    tables = (
        "() => [...document.querySelectorAll('div.dtable')].every(d => d.querySelector('tbody tr, p.empty'))"
    )
    charts = "() => [...document.querySelectorAll('div.chart')].every(d => d.dataset.rendered === '1')"
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = ctx.new_page()
        best = (float("inf"), float("inf"))
        for _ in range(3):
            t0 = time.perf_counter()
            page.goto(page_path.as_uri(), wait_until="commit")
            page.wait_for_function(tables, timeout=60_000, polling=10)
            t1 = time.perf_counter()
            page.wait_for_function(charts, timeout=60_000, polling=10)
            t2 = time.perf_counter()
            best = min(best, (t1 - t0, t2 - t0))
        ctx.close()
    return best


if __name__ == "__main__":
    sys.exit(main())
