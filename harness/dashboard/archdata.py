"""What the pages show about architectures, rooflines and published scores: pure functions, no plotly.

Everything here reads :mod:`harness.arch`'s tables and the ``analytics`` section of run records.
A record's analytics is typed (:class:`~harness.record.analytics.RecordAnalytics`, read
tolerantly whatever harness wrote it); figures are still passed through
:func:`~harness.dashboard.data.finite`, so a NaN or a missing one stays ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.arch import arch_row, arch_table, measured_value, reported_scores, roofline_points
from harness.arch.reported import reported_vs_measured
from harness.dashboard.data import RunView, finite
from harness.model.presets import PRESETS

NO_ANALYTICS = "the record has no analytics section (written by a harness that did not record them)"


# ---------------------------------------------------------------- architecture table


def arch_rows(views: Sequence[RunView]) -> list[dict[str, Any]]:
    """One row per model preset, then per model that only runs know (a local checkpoint), largest cache first.

    Rows carry :func:`harness.arch.arch_table`'s keys plus ``name`` (the label the pages show),
    ``kind`` (``hub``, ``builtin`` or ``run``), ``model_page`` and ``runs`` (runs of that model).
    """
    latest: dict[str, RunView] = {}
    counts: dict[str, int] = {}
    for v in views:
        latest[v.model] = v  # views come oldest first
        counts[v.model] = counts.get(v.model, 0) + 1
    return model_arch_rows(latest, counts)


def model_arch_rows(latest: dict[str, RunView], counts: dict[str, int]) -> list[dict[str, Any]]:
    """:func:`arch_rows` from the latest run and the number of runs of each model."""
    rows = []
    for row in arch_table():
        rows.append({**row, "name": row["preset"], "kind": row.get("source", "hub")})
    known = {r["name"] for r in rows}
    for model, v in latest.items():
        if model in known:
            continue
        f = v.record.analytics.architecture if v.record.analytics else None
        if f is None:
            continue
        rows.append({**arch_row(model, v.record.model.family, f), "name": model, "kind": "run"})
    for r in rows:
        last = latest.get(r["name"])
        r["model_page"] = last.model_page if last else None
        r["runs"] = counts.get(r["name"], 0)
    ok = [r for r in rows if r.get("error") is None]
    bad = [r for r in rows if r.get("error") is not None]
    ok.sort(key=lambda r: (-r["kv_bytes_per_token"], r["name"]))
    return ok + bad


# ---------------------------------------------------------------- decode against the roofline


@dataclass(frozen=True)
class RooflineView:
    """One run's batch-1 decode speed (tokens/s) against its hardware's roofline, or why there is none."""

    view: RunView
    scenario: str | None
    context_tokens: int | None
    measured_tps: float | None
    roofline_tps: float | None
    fraction: float | None
    gpu: str | None  # roofline table entry, e.g. "H100 SXM5 80GB"
    tensor_parallel_size: int | None
    fits: bool | None
    fit_reason: str | None
    reason: str | None  # why there is no roofline or no measured speed

    @property
    def has_roofline(self) -> bool:
        return self.measured_tps is not None and self.roofline_tps is not None


def roofline_view(view: RunView) -> RooflineView:
    """The decode-vs-roofline figures of one run, read from its record's analytics."""
    analytics = view.record.analytics
    roof = analytics.roofline if analytics else None
    points = roofline_points([view.record]) if analytics else []
    p = points[0] if points else {}
    reason = p.get("reason")
    if analytics is None:
        reason = NO_ANALYTICS
    elif not p:
        why = analytics.roofline_reason or analytics.architecture_reason
        reason = "no concurrency-1 load scenario to set against the batch-1 roofline" + (
            f"; {why}" if why else ""
        )
    ctx = finite(p.get("context_tokens"))
    return RooflineView(
        view=view,
        scenario=str(p["scenario"]) if p.get("scenario") is not None else None,
        context_tokens=int(ctx) if ctx is not None else None,
        measured_tps=finite(p.get("measured_tokens_per_s")),
        roofline_tps=finite(p.get("roofline_tokens_per_s")),
        fraction=finite(p.get("fraction_of_roofline")),
        gpu=(roof.gpu_name or roof.gpu) if roof else None,
        tensor_parallel_size=roof.tensor_parallel_size if roof else None,
        fits=roof.fits if roof else None,
        fit_reason=roof.reason if roof else None,
        reason=str(reason) if reason else None,
    )


# ---------------------------------------------------------------- measured minus reported


@dataclass(frozen=True)
class Comparison:
    """One task's published score next to the run's (fractions); ``delta`` is measured − reported."""

    task: str
    metric: str
    reported: float | None
    reported_shots: int | None
    source: str
    settings: str
    measured: float | None
    measured_stderr: float | None
    measured_shots: int | None
    delta: float | None
    comparable: bool
    note: str | None

    @property
    def z(self) -> float | None:
        """The delta in standard errors of the measurement (comparable tasks with a stderr only)."""
        if not self.comparable or self.delta is None or not self.measured_stderr:
            return None
        return self.delta / self.measured_stderr

    @property
    def verdict(self) -> str:
        """Within two standard errors of the published figure, or how far off; or why not comparable."""
        if not self.comparable:
            return "not comparable" + (f": {self.note}" if self.note else "")
        z = self.z
        if z is None:
            return "no standard error to judge by"
        if abs(z) <= 2:
            return "within 2 SE"
        return f"{abs(z):.1f} SE {'above' if z > 0 else 'below'}"


@dataclass(frozen=True)
class ReportedView:
    """A run's comparisons with published scores, or the sentence that says why there are none."""

    comparisons: list[Comparison]
    message: str | None  # set when ``comparisons`` is empty
    computed_now: bool  # the record had no analytics: compared with today's shipped scores
    no_scores: bool = False  # no published scores exist for the model at all

    @property
    def comparable(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.comparable and c.delta is not None]

    @property
    def mean_delta(self) -> float | None:
        deltas = [c.delta for c in self.comparable if c.delta is not None]
        return sum(deltas) / len(deltas) if deltas else None

    @property
    def within_2se(self) -> int:
        return sum(1 for c in self.comparisons if (z := c.z) is not None and abs(z) <= 2)

    @property
    def worst(self) -> Comparison | None:
        """The comparable task furthest from its published score."""
        return max(self.comparable, key=lambda c: abs(c.delta or 0.0), default=None)


def _int(v: Any) -> int | None:
    f = finite(v)
    return int(f) if f is not None else None


def _comparison(task: str, d: Mapping[str, Any], view: RunView) -> Comparison:
    stderr = finite(d.get("measured_stderr"))
    result = view.record.accuracy.get(task)
    metric = str(d.get("metric") or "")
    if stderr is None and result is not None and d.get("measured") is not None:
        # Records written before analytics kept the stderr: take it from the task result.
        stderr = finite(measured_value(result, metric)[1])
    return Comparison(
        task=task,
        metric=metric,
        reported=finite(d.get("reported")),
        reported_shots=_int(d.get("num_fewshot_reported")),
        source=str(d.get("source") or ""),
        settings=str(d.get("settings") or ""),
        measured=finite(d.get("measured")),
        measured_stderr=stderr,
        measured_shots=_int(d.get("num_fewshot_measured")),
        delta=finite(d.get("delta")),
        comparable=d.get("comparable") is True,
        note=str(d["note"]) if d.get("note") else None,
    )


def reported_view(view: RunView) -> ReportedView:
    """Measured minus reported for one run: from its analytics, or (for older records of a preset
    with published scores) compared now with the scores this harness ships."""
    preset = view.record.model.preset
    analytics = view.record.analytics
    computed_now = False
    raw: Mapping[str, Any]
    if analytics is not None:
        raw = {t: c.model_dump() for t, c in analytics.reported_vs_measured.items()}
    elif preset in PRESETS:  # a record's preset name is data: only shipped presets are looked up
        raw = {t: c.model_dump() for t, c in reported_vs_measured(preset, view.record.accuracy).items()}
        computed_now = bool(raw)
    else:
        raw = {}
    comparisons = [_comparison(str(t), d, view) for t, d in raw.items() if isinstance(d, Mapping)]
    message = None
    no_scores = False
    if not comparisons:
        published = sorted({s.task for s in reported_scores(preset)}) if preset in PRESETS else []
        no_scores = not published
        if no_scores:
            message = (
                f"No published scores are shipped for {view.model}, so there is nothing to compare with."
            )
        elif not view.record.accuracy:
            message = "This run has no accuracy results to compare with the published scores."
        else:
            message = (
                f"Published scores for {view.model} cover {', '.join(published)}; "
                "this run measured none of those tasks."
            )
    return ReportedView(comparisons, message, computed_now, no_scores)
