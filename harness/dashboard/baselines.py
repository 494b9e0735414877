"""What History draws from the committed baselines: per (model, suite, hardware) line, the
baseline's value of each metric (a dashed line), the band the suite's gates allow around it,
and the gate's verdict on the latest run, so a regression shows as a step out of the band."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.dashboard.data import model_label, run_view
from harness.record.hardware import hardware_label
from harness.record.run_record import RunRecord

# History metric keys (dashboard.fragments.HISTORY_METRICS) and the record field a gate names.
GATED = {
    "tps": "output_throughput",
    "ttft50": "median_ttft_ms",
    "ttft99": "p99_ttft_ms",
    "tpot50": "median_tpot_ms",
}
HIGHER_IS_BETTER = {"tps": True, "ttft50": False, "ttft99": False, "tpot50": False}


@dataclass(frozen=True)
class BaselineMark:
    """A baseline drawn on History: its value per metric, the allowed band, the latest verdict."""

    run_id: str
    values: dict[str, float | None]
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric key -> (low, high)
    verdict: str | None = None  # PASS / REGRESSION / REFUSED of the latest run, with its run id
    verdict_run: str | None = None


def _band(value: float, rel: float | None, absolute: float | None, higher: bool) -> tuple[float, float]:
    """The values a gate lets through: worsening up to rel (fraction) or absolute, whichever is larger."""
    allowed = max(abs(value) * (rel or 0.0), absolute or 0.0)
    return (value - allowed, value) if higher else (value, value + allowed)


def mark_of(baseline: RunRecord) -> BaselineMark:
    """The baseline's values of the History metrics and, for gated ones, the band."""
    from harness.dashboard.fragments import HISTORY_METRICS

    view = run_view(baseline)
    values = {key: get(view) for key, _title, get in HISTORY_METRICS}
    head = view.headline
    bands: dict[str, tuple[float, float]] = {}
    for gate in baseline.suite.spec.get("gates") or []:
        if not isinstance(gate, dict):
            continue
        for key, metric in GATED.items():
            value = values.get(key)
            if gate.get("metric") != metric or value is None or head is None:
                continue
            if gate.get("scenario") not in (None, head.name):
                continue  # History plots the suite's first scenario only
            bands[key] = _band(
                value, gate.get("max_rel_change"), gate.get("max_abs_change"), HIGHER_IS_BETTER[key]
            )
    return BaselineMark(run_id=baseline.run_id, values=values, bands=bands)


def history_marks(
    results: Path, latest: dict[tuple[str, str, str], Path]
) -> dict[tuple[str, str, str], BaselineMark]:
    """The baselines under ``results/baselines`` by (model, suite, hardware), each with the gate's
    verdict on ``latest`` (that line's newest successful run folder) where there is one."""
    from harness.storage.baseline import list_baselines
    from harness.storage.store import read_record

    marks = {}
    for entry in list_baselines(results):
        rec = entry.record
        if rec is None or rec.status != "ok":
            continue
        key = (model_label(rec), rec.suite.name, hardware_label(rec.environment))
        mark = mark_of(rec)
        folder = latest.get(key)
        if folder is not None:
            try:
                from harness.gate import GateError, compare

                candidate = read_record(folder)
                if candidate.run_id != rec.run_id:
                    report = compare(rec, candidate)
                    mark = BaselineMark(mark.run_id, mark.values, mark.bands, report.status, candidate.run_id)
            except (GateError, ValueError, OSError):
                pass  # no verdict: the History line still shows the baseline
        marks[key] = mark
    return marks


def baselines_signature(results: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime ns) of each baseline file: a new or changed baseline rebuilds History."""
    folder = Path(results) / "baselines"
    if not folder.is_dir():
        return []
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.json"))]
