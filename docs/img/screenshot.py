"""Regenerate docs/img/run-page.png: a real run's page, as a new user sees it after `make eval`.

    .venv/bin/python docs/img/screenshot.py --results results [--run RUN_ID_PREFIX]

Builds the dashboard of the results folder into a temporary folder, opens the run's page in
headless Chromium (Debian's /usr/bin/chromium, as the browser tests do) and saves the first
1,400 x 1,500 pixels.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from harness.dashboard import build_dashboard

OUT = Path(__file__).resolve().parent / "run-page.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--run", default="", help="run id prefix (default: the newest run)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build_dashboard(args.results, Path(tmp))
        pages = sorted((Path(tmp) / "runs").glob(f"*{args.run}*.html"))
        if not pages:
            raise SystemExit(f"no run page for {args.run!r} under {args.results}")
        page_path = pages[-1]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"),
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1500}, device_scale_factor=1)
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            n = page.locator("div.chart").count()
            if n:
                page.wait_for_function(
                    "n => document.querySelectorAll('div.chart[data-rendered=\"1\"] .main-svg').length >= n", arg=n
                )
            page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1400, "height": 1500})
            browser.close()
    print(f"wrote {args.out} from {page_path.name}")


if __name__ == "__main__":
    main()
