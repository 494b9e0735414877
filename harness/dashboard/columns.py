"""The data tables' columns and rows: the leaderboard and the run lists.

A table is a JSON config that ``dashboard.js`` draws: ``columns`` (what to show and how) and
``rows`` (plain values). Columns are built by :func:`column` and :func:`scenario_column` from
their few distinctive facts; the rest (whether a column is numeric, its value's path in the
row) follows from those, so a new column is one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

from harness.dashboard.archdata import reported_view
from harness.dashboard.data import LeaderRow, RunView, ScenarioView, iso
from harness.dashboard.rigorfigures import capacity_figures
from harness.decide.rows import is_random_weights
from harness.record.metrics import heading
from harness.record.metrics import metric as catalogue_metric

Column = dict[str, Any]
Better = Literal["high", "low"]

TEXT_FORMATS = frozenset({"text", "date", "status"})  # every other format is a number

# The leaderboard's per-scenario figures: row key -> ScenarioView attribute.
SCENARIO_FIGURES: tuple[tuple[str, str], ...] = (
    ("tps", "output_tps"),
    ("rps", "request_tps"),
    ("ttft50", "ttft_p50_ms"),
    ("ttft90", "ttft_p90_ms"),
    ("ttft99", "ttft_p99_ms"),
    ("ttftsd", "ttft_std_ms"),
    ("tpot50", "tpot_p50_ms"),
    ("tpot99", "tpot_p99_ms"),
    ("tpotsd", "tpot_std_ms"),
    ("jpt", "energy_per_token_j"),
)


def column(
    key: str,
    label: str | None = None,
    fmt: str | None = None,
    *,
    metric: str | None = None,
    shade: bool = True,
    path: Sequence[str | int] | None = None,
    better: Better | None = None,
    title: str | None = None,
    se: Sequence[str | int] | None = None,
    href: str | None = None,
    sub: dict[str, Any] | None = None,
    flag: str | None = None,
    hide_empty: bool = False,
    clip: int | None = None,
) -> Column:
    """One column of a data table (the keys ``dashboard.js`` reads).

    Args:
        key: the column's id (sorting, ``sort`` in the config); also its row key unless ``path``.
        label: the heading; a figure's heading comes from the catalogue (``metric``).
        fmt: a :mod:`harness.formatting` kind, or ``text``, ``date``, ``status``; a figure's from
            the catalogue.
        metric: the catalogue key of the figure the column shows (:mod:`harness.record.metrics`):
            its heading, format and which way is better come from there.
        shade: with ``metric``, whether the table shades the best value (off where rows do not
            compare, as in the run list).
        path: where the value sits in a row (``"$scenario"`` is the picked load scenario).
        better: which way is best (for a column that is not a catalogued figure, e.g. a rank).
        se: path of the value's standard error, shown as ``± se``.
        href: row key of a link for the cell.
        sub: a second, smaller figure under the value: ``{"path", "label"[, "fmt"]}``.
        flag: row key of a warning shown beside the value.
        hide_empty: drop the column while no shown row has a value.
        clip: cut the text to this many characters (the full text on hover).
    """
    if metric is not None:
        m = catalogue_metric(metric)
        label = heading(metric) if label is None else label
        fmt = m.fmt if fmt is None else fmt
        if shade:
            better = {"higher": "high", "lower": "low", "none": None}[m.direction]  # type: ignore[assignment]
    fmt = fmt or "text"
    col: Column = {
        "key": key,
        "label": label if label is not None else key,
        "path": list(path) if path is not None else [key],
        "fmt": fmt,
    }
    if metric is not None:
        col["metric"] = metric
    if fmt not in TEXT_FORMATS:
        col["num"] = True
    optional = {
        "better": better,
        "title": title,
        "se": list(se) if se is not None else None,
        "href": [href] if href is not None else None,
        "sub": sub,
        "flag": [flag] if flag is not None else None,
        "hideEmpty": hide_empty or None,
        "clip": clip,
    }
    col.update({k: v for k, v in optional.items() if v is not None})
    return col


def scenario_column(key: str, metric: str, title: str, sub: tuple[str, str] | None = None) -> Column:
    """A leaderboard column of the picked load scenario's catalogued figure ``metric``;
    ``sub`` is (figure key, label)."""
    return column(
        key,
        metric=metric,
        path=["perf", "$scenario", key],
        title=title,
        sub={"path": ["perf", "$scenario", sub[0]], "label": sub[1]} if sub else None,
    )


def search_text(v: RunView) -> str:
    """What the search box matches a row against."""
    return " ".join(
        x for x in (v.model, v.suite, v.hardware, v.engine, v.run_id, v.status, v.error or "") if x
    ).lower()


def scenario_figures(s: ScenarioView) -> dict[str, Any]:
    return {key: getattr(s, attr) for key, attr in SCENARIO_FIGURES}


def runs_href(model: str, prefix: str = "") -> str:
    return f"{prefix}runs.html#q={quote(model, safe='')}"


LEADERBOARD_HEAD: tuple[Column, ...] = (
    column("model", "Model", href="model_href", flag="flag"),
    column("suite", "Suite"),
    column(
        "acc_avg",
        metric="accuracy_mean",
        se=["acc_avg_se"],
        sub={"path": ["acc_n"], "label": "n", "fmt": "int"},
        title="Mean over the tasks the run has ± its standard error; n: documents evaluated over all tasks",
    ),
    column(
        "rep",
        "Δ vs published",
        "delta",
        hide_empty=True,
        href="rep_href",
        sub={"path": ["rep_n"], "label": "over", "fmt": "text"},
        title="Mean of measured − published score over the tasks with a published figure at the same "
        "metric and shots; details on the Architecture page",
    ),
    scenario_column("tps", "output_throughput", "Output tokens per second in the selected scenario"),
    scenario_column(
        "ttft50",
        "median_ttft_ms",
        "Median time to first token; σ is the standard deviation",
        sub=("ttftsd", "σ"),
    ),
    scenario_column(
        "ttft99", "p99_ttft_ms", "99th percentile time to first token (p90 below)", sub=("ttft90", "p90")
    ),
    scenario_column(
        "tpot50",
        "median_tpot_ms",
        "Median time per output token after the first; σ is the standard deviation",
        sub=("tpotsd", "σ"),
    ),
    scenario_column(
        "jpt",
        "energy_per_output_token_j",
        "GPU energy per output token in the selected scenario (needs an NVIDIA GPU)",
    ),
    column(
        "cap",
        metric="capacity_at_slo",
        hide_empty=True,
        sub={"path": ["cap_unit"], "label": "", "fmt": "text"},
        title="Highest load meeting the suite's SLO at its target attainment (capacity search)",
    ),
    column(
        "jslo",
        metric="energy_per_output_token_at_slo_j",
        hide_empty=True,
        flag="jslo_reason",
        title="GPU energy per output token at the capacity load",
    ),
    column(
        "rss",
        metric="engine_peak_rss_bytes",
        title="Peak resident memory of the engine's process tree over the run",
    ),
)
GPU_MEMORY_COLUMN = column("gpumem", metric="peak_gpu_memory_bytes", title="Peak GPU memory used (NVML)")
LEADERBOARD_TAIL: tuple[Column, ...] = (
    column("engine", "Engine"),
    column("hardware", "Hardware"),
    column("runs", "Runs", "int", href="runs_href", title="All runs of this model (opens the run list)"),
    column(
        "started",
        "Latest run",
        "date",
        href="run_href",
        title="Start of the run shown (UTC); opens its detail page",
    ),
)


def task_column(task: str) -> Column:
    return column(
        f"acc:{task}",
        task,
        metric="accuracy",
        path=["acc", task, 0],
        se=["acc", task, 1],
        hide_empty=True,
        sub={"path": ["acc", task, 2], "label": "n", "fmt": "int"},
        title=f"{task}: headline metric ± standard error; n: documents evaluated",
    )


def leaderboard_row(r: LeaderRow, prefix: str = "") -> dict[str, Any]:
    v = r.latest
    rep = reported_view(v)
    flag = None
    if r.last_failed is not None:
        flag = f"newer run failed ({iso(r.last_failed.started_at)[:10]})"
    rec = v.record
    random = is_random_weights(rec)
    if random:
        flag = RANDOM_LABEL + (f"; {flag}" if flag else "")
    ns = {t.name: t.n_samples for t in rec.tasks}
    return {
        "model": v.model,
        "model_href": prefix + v.model_page,
        "suite": v.suite,
        "hardware": v.hardware,
        "engine": v.engine,
        "run_id": v.run_id,
        "run_href": prefix + v.page,
        "started": v.started_iso,
        "runs": r.n_runs,
        "runs_href": runs_href(v.model, prefix),
        "flag": flag,
        "acc": {t: [tv.value, tv.stderr, ns.get(t)] for t, tv in v.accuracy.items()},
        "acc_avg": v.acc_avg,
        "acc_n": sum(n for n in ns.values() if n is not None) if ns and None not in ns.values() else None,
        "random_weights": random,
        "unranked": random or v.acc_avg is None,
        "rank": None,
        "acc_avg_se": v.acc_avg_se,
        "rep": rep.mean_delta,
        "rep_n": f"{len(rep.comparable)} task{'s' if len(rep.comparable) != 1 else ''}",
        "rep_href": f"{prefix}architecture.html#reported",
        "perf": {s.name: scenario_figures(s) for s in v.scenarios.values()},
        "headline": v.headline.name if v.headline else None,
        "rss": v.peak_rss_bytes,
        "gpumem": v.peak_gpu_memory_bytes,
        **capacity_figures(v.record),
        "search": search_text(v),
    }


RANDOM_LABEL = "random weights: not ranked"
RANK_COLUMN = column(
    "rank",
    "#",
    "int",
    better="low",
    title="Rank by average accuracy among the comparable rows of this table (same suite and hardware); "
    "random-weight models and rows without accuracy are not ranked",
)


def ranked_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (one suite on one hardware label) with ``rank`` set by average accuracy, highest
    first; rows marked ``unranked`` keep ``rank`` None. Ties share a rank."""
    ranked = sorted((r for r in rows if not r["unranked"]), key=lambda r: -r["acc_avg"])
    prev, rank = None, 0
    for i, r in enumerate(ranked, start=1):
        if r["acc_avg"] != prev:
            rank, prev = i, r["acc_avg"]
        r["rank"] = rank
    return rows


def leaderboard_config(rows: Sequence[LeaderRow], prefix: str = "", ranked: bool = False) -> dict[str, Any]:
    """Columns and rows of a leaderboard table (see dashboard.js for the column keys).

    ``ranked``: the rows are one suite on one hardware label (:func:`leaderboard_groups`): a rank
    column, best-value shading among ranked rows only. Unranked (rows of several suites or
    hardware labels): no rank and no shading, since their figures do not compare.
    """
    views = [r.latest for r in rows]
    tasks = sorted({t for v in views for t in v.accuracy})
    scen_labels: dict[str, str] = {}
    for v in views:
        for s in v.scenarios.values():
            scen_labels.setdefault(s.name, f"{s.name} ({s.load}; {s.shape})")
    columns = list(LEADERBOARD_HEAD)
    if any(v.peak_gpu_memory_bytes is not None for v in views):
        columns.append(GPU_MEMORY_COLUMN)
    columns += [task_column(t) for t in tasks]
    columns += LEADERBOARD_TAIL
    scenarios = [
        {"name": "", "label": "each suite's first scenario" if not ranked else "the suite's first scenario"}
    ]
    scenarios += [{"name": n, "label": label} for n, label in scen_labels.items()]
    table_rows = [leaderboard_row(r, prefix) for r in rows]
    if ranked:
        columns.insert(0, RANK_COLUMN)
        ranked_rows(table_rows)
    else:
        columns = [{k: v for k, v in c.items() if k != "better"} for c in columns]
    return {
        "columns": columns,
        "rows": table_rows,
        "filters": [] if ranked else ["suite", "hardware"],
        "scenarios": scenarios,
        "scenario": "",
        "sort": {"key": "rank", "dir": "asc"} if ranked else {"key": "suite", "dir": "asc"},
        "empty": "No successful runs match.",
    }


def leaderboard_groups(rows: Sequence[LeaderRow]) -> list[tuple[str, str, list[LeaderRow]]]:
    """(suite, hardware, rows) of every suite x hardware label, the one with most rows first:
    each is ranked on its own, never against another."""
    groups: dict[tuple[str, str], list[LeaderRow]] = {}
    for r in rows:
        groups.setdefault((r.latest.suite, r.latest.hardware), []).append(r)
    return [(s, h, g) for (s, h), g in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


FIRST_SCENARIO = "In the suite's first scenario"
# No best-value shading in the run list: it mixes suites and scenarios, whose figures do not compare.
RUNS_COLUMNS: tuple[Column, ...] = (
    column("started", "Started (UTC)", "date", href="run_href"),
    column("model", "Model", href="model_href"),
    column("suite", "Suite"),
    column("status", "Status", "status"),
    column("acc_avg", metric="accuracy_mean", shade=False),
    column("tps", metric="output_throughput", shade=False, title=FIRST_SCENARIO),
    column("ttft99", metric="p99_ttft_ms", shade=False, title=FIRST_SCENARIO),
    column("scenario", "Scenario"),
    column("hardware", "Hardware"),
    column("engine", "Engine"),
    column("duration", metric="run_duration_s", shade=False),
    column("run_id", "Run id", href="run_href"),
    column("error", "Error", clip=90),
)


def runs_row(v: RunView, prefix: str = "") -> dict[str, Any]:
    h = v.headline
    return {
        "started": v.started_iso,
        "run_href": prefix + v.page,
        "model": v.model,
        "model_href": prefix + v.model_page,
        "suite": v.suite,
        "status": v.status,
        "acc_avg": v.acc_avg,
        "scenario": h.name if h else None,
        "tps": h.output_tps if h else None,
        "ttft99": h.ttft_p99_ms if h else None,
        "hardware": v.hardware,
        "engine": v.engine,
        "run_id": v.run_id,
        "duration": v.duration_s,
        "error": v.error,
        "search": search_text(v),
    }


def runs_config(root: str = "", hash_filters: bool = True) -> dict[str, Any]:
    """The run list: :func:`runs_row` of every run, failed ones included with their error,
    newest first. The rows are in the shards' data files (``"shards": "runs"``), their links
    relative to the top folder: ``root`` leads there from the page."""
    return {
        "columns": list(RUNS_COLUMNS),
        "shards": "runs",
        "root": root,
        "filters": ["suite", "hardware", "status"],
        "sort": {"key": "started", "dir": "desc"},
        "hash": hash_filters,
        "empty": "No runs match.",
    }
