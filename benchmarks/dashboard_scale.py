"""How long `harness dashboard` takes over many runs, and how big the index page gets.

    python benchmarks/dashboard_scale.py [--runs 1000] [--models 12] [--keep DIR] [--browser]

Generates ``--runs`` valid records (with per-request tables, a failed run every 25) into a
temporary results folder, builds the dashboard twice (cold: plotly.js written; warm: pages
only) and prints the seconds per phase, the index page's size and the whole folder's size.
With ``--browser``, also times headless Chromium (/usr/bin/chromium) from opening
index.html, history.html and architecture.html to every chart drawn.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=1000)
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
        t0 = time.perf_counter()
        generate_results(results, args.runs, n_models=args.models)
        print(f"generated {args.runs} records in {time.perf_counter() - t0:.1f} s")
        for label in ("cold", "warm"):
            report = build_dashboard(results, out)
            t = report.timings_s
            print(
                f"{label}: {t['total_s']:.2f} s total (load {t['load_s']:.2f}, run pages {t['run_pages_s']:.2f}, "
                f"other pages {t['other_pages_s']:.2f}); {len(report.pages)} pages, "
                f"{report.leaderboard_rows} leaderboard rows, {len(report.warnings)} warnings"
            )
        sizes = {p.name: p.stat().st_size for p in out.glob("*.*")}
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"index.html: {report.index_bytes:,} bytes")
        for name in ("history.html", "runs.html", "architecture.html", "plotly.min.js"):
            print(f"{name}: {sizes.get(name, 0):,} bytes")
        print(f"whole folder: {total / 2**20:.1f} MiB")
        if args.browser:
            for name in ("index.html", "history.html", "runs.html", "architecture.html"):
                t_tables, t_charts = time_in_browser(out / name)
                print(
                    f"{name} in Chromium: tables filled {t_tables:.2f} s, all charts drawn {t_charts:.2f} s"
                )
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
