"""How long `harness dashboard` takes over many runs, and how big the index page gets.

    python benchmarks/dashboard_scale.py [--runs 1000] [--models 12] [--keep DIR]

Generates ``--runs`` valid records (with per-request tables, a failed run every 25) into a
temporary results folder, builds the dashboard twice (cold: plotly.js written; warm: pages
only) and prints the seconds per phase, the index page's size and the whole folder's size.
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
        for name in ("history.html", "runs.html", "plotly.min.js"):
            print(f"{name}: {sizes.get(name, 0):,} bytes")
        print(f"whole folder: {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
