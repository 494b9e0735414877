"""The regression gate: a candidate run compared with a baseline, metric by metric.

:func:`compare` is pure: two records and a list of thresholds in, a frozen
:class:`GateReport` out. The report renders as a terminal table, Markdown (for a CI job
summary) and JUnit XML (one test case per metric), and carries the exit code CI needs:

* **0**: nothing regressed (changes within their bounds, within noise, or improvements);
* **1**: a metric regressed, a metric the baseline has is missing from the candidate, or the
  candidate run itself failed;
* **2**: the comparison cannot be made. Configuration mismatches are listed in the report
  (``refused``); unusable inputs raise :class:`GateError` (the CLI also maps a missing
  baseline and an unreadable record to 2).

Metrics
    * an accuracy task name: ``record.accuracy[task].value`` with its ``stderr``;
    * a scenario field: any numeric field of :class:`~harness.records.ScenarioResult`
      (``output_throughput``, ``p99_ttft_ms``, ``failed``, ...) plus the energy figures
      ``energy_j``, ``energy_per_output_token_j`` and ``output_tokens_per_j`` of the record's
      energy value (:func:`~harness.records.scenario_energy_value`: the measured interval, first
      measured send to last completion; v1 records give their whole window, labelled as such).
      A threshold without ``scenario`` applies to every scenario;
    * a run field: ``engine_peak_rss_bytes`` (peak engine memory over the whole run).

Direction
    Taken from the threshold's ``higher_is_better`` if set, else from the metric: the task's
    own ``higher_is_better`` for accuracy; throughputs, ``completed`` and ``*_per_j`` are
    higher-better; ``*_ms``, ``*_s``, ``*_j``, ``*_bytes``, ``failed`` and ``duration`` are
    lower-better. Any other metric needs ``higher_is_better`` in the threshold.

Bounds
    ``max_abs_change`` (metric units) and ``max_rel_change`` (fraction of the baseline) bound
    the allowed *worsening*. With both, the larger allowance applies, so an absolute floor
    keeps a relative bound from flagging a 2 ms → 3 ms latency. With neither, any worsening
    beyond noise regresses.

Noise
    Each figure's standard error ``se`` gives the difference's ``σ = sqrt(se_b² + se_c²)``.
    A change beyond its bound counts (as ``regression`` or ``improvement``) only when it is
    also beyond ``2σ``; otherwise it is ``within_noise``, so a verdict does not flip on the
    next run of the same code. Standard errors come from lm-eval's ``stderr`` for accuracy;
    for a scenario's mean latencies from ``std / √completed`` (requests are the independent
    unit, which is conservative for ITL) and for medians ``√(π/2) · std / √completed``
    (normal approximation). Percentiles, throughputs, counts and energy carry no spread in
    a record without repeats, so only their bound applies and the report says so.

Repeats (performance)
    Where both runs measured a point more than once (``repeats:`` in the suite), a change
    beyond its bound counts only when it is also beyond the run-to-run noise: Welch's test
    over the repeats at p < 0.05, or separate Student-t intervals
    (:func:`harness.rigor.compare.noise_check`). With one repeat on either side the report
    says it compared without a noise estimate.

Paired accuracy
    Given the two runs' sample-log folders (the CLI finds them: ``samples/`` of a run, the
    ``<baseline>.samples/`` copy that ``harness baseline set`` keeps), a task is compared per
    document: exact McNemar for 0/1 metrics, a paired bootstrap otherwise. The change is the
    mean per-document difference; it regresses when beyond its bound and significant, and the
    reason names the documents that flipped each way.

Validity
    A gated scenario point flagged invalid (``valid: false``) in either run makes the report
    refused (exit 2) with the reasons; ``--allow-mismatch`` does not wave it through.

Verdicts (worst first): ``regression``, ``missing`` (fail); ``within_noise``,
``improvement`` (beyond its bound: time to refresh the baseline), ``pass``, ``new`` (no
baseline figure), ``unmeasured`` (in neither run, e.g. energy without a GPU) (do not fail).

Thresholds come from the candidate's suite (``record.suite.spec['gates']``); a suite that
declares none gets :func:`default_thresholds`.

Layout: :mod:`~harness.gate.report` (value types), :mod:`~harness.gate.compare` (the pure
comparison), :mod:`~harness.gate.render` (terminal, Markdown, JUnit) and
:mod:`~harness.gate.cli` (`harness gate`, `harness baseline`). Every public name is
imported here, so ``from harness.gate import compare`` keeps working.
"""

from __future__ import annotations

from harness.gate.compare import (
    RUN_METRICS,
    SCENARIO_DERIVED,
    SCENARIO_FIELDS,
    SCENARIO_METRICS,
    allowed_worsening,
    apply_family,
    compare,
    compare_metric,
    config_mismatches,
    context_notes,
    default_thresholds,
    figure,
    judge,
    known_direction,
    resolve_checks,
    suite_thresholds,
)
from harness.gate.render import (
    TABLE_COLUMNS,
    allowed_text,
    change_text,
    noise_text,
    render_error_junit,
    render_error_markdown,
    render_junit,
    render_markdown,
    render_terminal,
    table_rows,
    verdict_text,
)
from harness.gate.report import (
    CONFIDENCE,
    DEFAULT_ACCURACY_MAX_ABS,
    DEFAULT_FAILED_SHARE,
    DEFAULT_PERFORMANCE,
    FAILING,
    NOISE_SIGMAS,
    VERDICT_ORDER,
    Check,
    Figure,
    GateError,
    GateReport,
    MetricComparison,
    MetricKind,
    Verdict,
)

__all__ = [
    "CONFIDENCE",
    "DEFAULT_ACCURACY_MAX_ABS",
    "DEFAULT_FAILED_SHARE",
    "DEFAULT_PERFORMANCE",
    "FAILING",
    "NOISE_SIGMAS",
    "RUN_METRICS",
    "SCENARIO_DERIVED",
    "SCENARIO_FIELDS",
    "SCENARIO_METRICS",
    "TABLE_COLUMNS",
    "VERDICT_ORDER",
    "Check",
    "Figure",
    "GateError",
    "GateReport",
    "MetricComparison",
    "MetricKind",
    "Verdict",
    "allowed_text",
    "allowed_worsening",
    "apply_family",
    "change_text",
    "compare",
    "compare_metric",
    "config_mismatches",
    "context_notes",
    "default_thresholds",
    "figure",
    "judge",
    "known_direction",
    "noise_text",
    "verdict_text",
    "render_error_junit",
    "render_error_markdown",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "resolve_checks",
    "suite_thresholds",
    "table_rows",
]
