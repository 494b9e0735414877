"""Runs in shards, and what the overview pages need from each shard.

A dashboard of 10,000 runs must not re-read 10,000 runs to add one. Runs are grouped in
shards: the runs of one model, split by a hash of their record's path once a model has more
than :data:`SHARD_RUNS` of them (the number of shards doubles as the model's runs do). For
each shard the build keeps

* a **summary** (:func:`summarize`): counts, the latest run, per (suite, hardware) the latest
  successful and the newest failed run, the newest runs, the warnings: everything the
  leaderboard, the architecture and technique pages and the context lines need, in a few
  kilobytes however many runs the shard holds;
* **data files** (:mod:`harness.dashboard.fragments`): the run-list rows and the chart points
  of its runs, which the run list, the history and the model pages load and join.

:func:`merge` combines the summaries of every shard into an :class:`Overview`; doing so from
the views of all runs at once (:meth:`Overview.of_views`) gives the same result, which is how
the pages are tested.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from harness.dashboard.data import LeaderRow, RunView, model_slug, order, view_from_summary, view_summary

SHARD_RUNS = 256  # runs of one model per shard before the model is split in two, four, ...
RECENT = 12  # newest runs on the index page


def shard_count(n_runs: int) -> int:
    """Shards for a model with ``n_runs`` runs: 1 up to SHARD_RUNS, then doubling."""
    n = 1
    while n_runs > n * SHARD_RUNS:
        n *= 2
    return n


def shard_id(model: str, key: str, n_model_runs: int) -> str:
    """The shard of run ``key`` (its record path) of ``model``; stable while the model's shard count is."""
    return f"{model_slug(model)}.{zlib.crc32(key.encode()) % shard_count(n_model_runs)}"


class RecentRun(NamedTuple):
    """One row of the index page's newest runs."""

    ts: float
    run_id: str
    page: str
    model_page: str
    model: str
    suite: str
    status: str
    hardware: str
    error: str | None
    started_iso: str


def _pinned(v: RunView | None, key: str | None) -> list[Any] | None:
    """A view as a summary carries it: its order, record key and cached view."""
    if v is None or key is None:
        return None
    return [*order(v), key, v.page, view_summary(v)]


def summarize(
    views: Sequence[tuple[str, RunView]], warnings: Sequence[str], meta: dict[str, Any]
) -> dict[str, Any]:
    """What the overview pages need from one shard: ``views`` are (record key, view) pairs of
    one model, oldest first, pages named; ``warnings`` those its run pages reported; ``meta``
    what its data file holds (:func:`harness.dashboard.fragments.shard_fragments`)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for key, v in views:
        g = groups.setdefault(
            (v.suite, v.hardware),
            {"suite": v.suite, "hw": v.hardware, "n": 0, "failed": 0, "ok_n": 0, "first_ok": None,
             "ok": None, "bad": None},
        )  # fmt: skip
        g["n"] += 1
        if v.ok:
            g["ok_n"] += 1
            if g["first_ok"] is None:
                g["first_ok"] = list(order(v))
            g["ok"] = (key, v)
        else:
            g["failed"] += 1
            g["bad"] = (key, v)
    for g in groups.values():
        g["ok"] = _pinned(g["ok"][1], g["ok"][0]) if g["ok"] else None
        g["bad"] = _pinned(g["bad"][1], g["bad"][0]) if g["bad"] else None
    last_key, last = views[-1] if views else (None, None)
    recent = [
        list(RecentRun(*order(v), v.page, v.model_page, v.model, v.suite, v.status, v.hardware,
                       v.error, v.started_iso))
        for _, v in views[-RECENT:]
    ]  # fmt: skip
    return {
        "model": views[0][1].model if views else "",
        "n": len(views),
        "failed": sum(not v.ok for _, v in views),
        "last": _pinned(last, last_key),
        "groups": list(groups.values()),
        "recent": recent,
        "warnings": list(warnings),
        # Variant runs ("model@variant") are compared from their full records on the techniques page.
        "variants": [_pinned(v, k) for k, v in views if "@" in v.model],
        "hist": meta["hist"],
        "points": meta["points"],
    }


@dataclass
class HistoryGroup:
    """One line of a history chart: a model on a kind of hardware, in a suite."""

    model: str
    hardware: str
    first: tuple[float, str]  # its oldest successful run


@dataclass
class Overview:
    """Every run reduced to what the overview pages show (see :func:`merge`)."""

    n_runs: int = 0
    n_failed: int = 0
    models: list[str] = field(default_factory=list)
    latest: RunView | None = None  # the newest run
    suites: set[str] = field(default_factory=set)
    hardware: set[str] = field(default_factory=set)
    rows: list[LeaderRow] = field(default_factory=list)  # leaderboard, best average accuracy first
    recent: list[RecentRun] = field(default_factory=list)  # newest first
    last_by_model: dict[str, RunView] = field(default_factory=dict)
    runs_by_model: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[HistoryGroup]] = field(default_factory=dict)  # suite -> lines, oldest first
    # What the data files hold: [count, first, last] of each shard's points per history line
    # (model, suite, hardware) and metric, and per model chart and series.
    hist: dict[tuple[str, str, str], dict[str, list[list[Any]]]] = field(default_factory=dict)
    points: dict[str, dict[str, list[list[Any]]]] = field(default_factory=dict)
    ok_by_suite: dict[str, int] = field(default_factory=dict)
    variants: list[RunView] = field(default_factory=list)  # variant runs, oldest first
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of_views(cls, views: Sequence[RunView]) -> Overview:
        """The overview of ``views`` (oldest first, pages named) without shards."""
        from harness.dashboard.fragments import shard_fragments

        by_model: dict[str, list[tuple[str, RunView]]] = {}
        for i, v in enumerate(views):
            by_model.setdefault(v.model, []).append((str(i), v))
        summaries = [
            summarize(vs, [], shard_fragments([v for _, v in vs])["meta"]) for vs in by_model.values()
        ]
        return merge(summaries, lambda pin: views[int(pin[2])])


def pinned_view(folder_of: Callable[[str], str | None]) -> Callable[[list[Any]], RunView]:
    """How :func:`merge` makes a view from a summary's pinned run: from the cached view, with
    its record read from ``folder_of(record key)`` when a page needs it."""

    def view(pinned: list[Any]) -> RunView:
        _ts, _run_id, key, page, summary = pinned
        v = view_from_summary(summary, folder_of(key))
        object.__setattr__(v, "page", page)
        object.__setattr__(v, "model_page", f"models/{model_slug(v.model)}.html")
        return v

    return view


def merge(summaries: Iterable[dict[str, Any]], view_of: Callable[[list[Any]], RunView]) -> Overview:
    """The overview of every shard; ``view_of(pinned)`` makes the view of a run a summary pins
    (the latest of a model, a leaderboard row, a variant run)."""
    o = Overview()
    models: set[str] = set()
    leaders: dict[tuple[str, str, str], list[Any]] = {}  # key -> [n, failed, ok pin, bad pin]
    last_by_model: dict[str, list[Any]] = {}
    recent: list[list[RecentRun]] = []
    history: dict[tuple[str, str, str], list[Any]] = {}
    variants: list[list[Any]] = []
    for s in summaries:
        if not s["n"]:
            continue
        model = s["model"]
        models.add(model)
        o.n_runs += s["n"]
        o.n_failed += s["failed"]
        o.runs_by_model[model] = o.runs_by_model.get(model, 0) + s["n"]
        last = last_by_model.get(model)
        if last is None or s["last"][:2] > last[:2]:
            last_by_model[model] = s["last"]
        for g in s["groups"]:
            o.suites.add(g["suite"])
            o.hardware.add(g["hw"])
            k = (model, g["suite"], g["hw"])
            lead = leaders.setdefault(k, [0, 0, None, None])
            lead[0] += g["n"]
            lead[1] += g["failed"]
            for i, pin in ((2, g["ok"]), (3, g["bad"])):
                if pin is not None and (lead[i] is None or pin[:2] > lead[i][:2]):
                    lead[i] = pin
            if g["ok_n"]:
                o.ok_by_suite[g["suite"]] = o.ok_by_suite.get(g["suite"], 0) + g["ok_n"]
                h = history.get(k)
                if h is None or tuple(g["first_ok"]) < h[0]:
                    history[k] = [tuple(g["first_ok"])]
        recent.append([RecentRun(*r) for r in reversed(s["recent"])])
        for suite, groups in s["hist"].items():
            for group, metrics in groups.items():
                line = o.hist.setdefault((model, suite, group.rpartition("\x1f")[2]), {})
                for metric, m in metrics.items():
                    line.setdefault(metric, []).append(m)
        for chart, series in s["points"].items():
            for name, m in series.items():
                o.points.setdefault(chart, {}).setdefault(name, []).append(m)
        o.warnings.extend(s["warnings"])
        variants.extend(s["variants"])
    o.models = sorted(models)
    o.last_by_model = {m: view_of(p) for m, p in sorted(last_by_model.items())}
    if last_by_model:
        o.latest = o.last_by_model[max(last_by_model, key=lambda m: last_by_model[m][:2])]
    rows = []
    for n, failed, ok, bad in leaders.values():
        if ok is None:
            continue
        latest = view_of(ok)
        newer_failed = view_of(bad) if bad is not None and bad[0] > ok[0] else None
        rows.append(LeaderRow(latest=latest, n_runs=n, n_failed=failed, last_failed=newer_failed))
    rows.sort(
        key=lambda r: (-(r.latest.acc_avg if r.latest.acc_avg is not None else float("-inf")), r.latest.model)
    )
    o.rows = rows
    o.recent = list(heapq.merge(*recent, key=lambda r: (r.ts, r.run_id), reverse=True))[:RECENT]
    by_suite: dict[str, list[HistoryGroup]] = {}
    for (model, suite, hw), (first,) in history.items():
        by_suite.setdefault(suite, []).append(HistoryGroup(model, hw, first))
    o.history = {s: sorted(gs, key=lambda g: g.first) for s, gs in by_suite.items()}
    o.variants = sorted((view_of(pin) for pin in variants), key=order)
    return o
