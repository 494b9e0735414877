"""What a dashboard page shows, read as dashboard.js reads it: the JSON it embeds, and the
shards' data files it loads (rows of its run table, points of its chart lines).

The browser tests (tests/integration/test_dashboard_browser.py) check the same pages in
Chromium; this lets unit tests read them without one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.dashboard.fragments import PREFIX, SUFFIX


def embedded(html: str, id_: str) -> Any:
    """The JSON a page embeds in ``<script type="application/json" id=...>``, parsed strictly."""
    m = re.search(rf'<script type="application/json" id="{re.escape(id_)}">(.*?)</script>', html, re.S)
    assert m, f"no JSON block {id_}"

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-JSON constant {name} in {id_}")

    return json.loads(m.group(1), parse_constant=no_constants)


def shards_of(page: Path) -> list[dict[str, Any]]:
    """The data of every shard the page loads, in the order it loads them."""
    html = page.read_text()
    out = []
    for src in re.findall(r'<script src="([^"]+)"></script>', html):
        text = (page.parent / src.split("?")[0]).read_text()
        assert text.startswith(PREFIX) and text.endswith(SUFFIX), src
        out.append(json.loads(text[len(PREFIX) : -len(SUFFIX)]))
    return out


def table_rows(page: Path, table_id: str) -> list[dict[str, Any]]:
    """The rows of a table as dashboard.js first shows them: newest first for the run lists."""
    config = embedded(page.read_text(), f"{table_id}-data")
    if not config.get("shards"):
        return list(config["rows"])
    root = config.get("root", "")
    rows = []
    for shard in shards_of(page):
        for r in shard.get(config["shards"], []):
            rows.append({**r, "run_href": root + r["run_href"], "model_href": root + r["model_href"]})
    key = config["sort"]["key"]
    # Stable, like the page's sort: equal start times keep the shards' order.
    return sorted(rows, key=lambda r: r[key], reverse=config["sort"]["dir"] == "desc")


def chart_specs(page: Path | str) -> dict[str, Any]:
    """Every chart of a page (a path) or of page text (embedded data only), lines filled from
    the data files as dashboard.js fills them."""
    html = page.read_text() if isinstance(page, Path) else page
    shards = shards_of(page) if isinstance(page, Path) else []
    ids = re.findall(r'<div class="chart" id="([^"]+)" data-spec="([^"]+)"', html)
    specs = {chart: embedded(html, spec) for chart, spec in ids}
    for spec in specs.values():
        for trace in spec["data"]:
            meta = trace.get("meta")
            if not isinstance(meta, list):
                continue
            pts = []
            for shard in shards:
                v: Any = shard
                for k in meta:
                    v = v.get(k) if isinstance(v, dict) else None
                if v:
                    pts += list(zip(*v, strict=True))
            pts.sort(key=lambda p: p[0])
            trace["x"], trace["y"], trace["customdata"] = ([p[i] for p in pts] for i in range(3))
    return specs
