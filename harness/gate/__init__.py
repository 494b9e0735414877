"""The regression gate: a candidate run compared with a baseline, metric by metric.

:func:`compare` is pure: two records and a list of thresholds in, a frozen
:class:`GateReport` out. The report renders as a terminal table, Markdown (for a CI job
summary) and JUnit XML (one test case per metric), and carries the exit code CI needs:

* **0**: nothing regressed (every check passed or improved; inconclusive ones too under
  ``--inconclusive pass``);
* **1**: a metric regressed, a metric the baseline has is missing from the candidate, the
  candidate run itself failed, or (by default, ``--inconclusive fail``) a check is inconclusive;
* **2**: the comparison cannot be made. Configuration mismatches are listed in the report
  (``refused``); unusable inputs raise :class:`GateError` (the CLI also maps a missing
  baseline and an unreadable record to 2).

Metrics
    * an accuracy task name: ``record.accuracy[task].value`` with its ``stderr``;
    * a scenario field: any numeric field of :class:`~harness.record.run_record.ScenarioResult`
      (``output_throughput``, ``p99_ttft_ms``, ``failed``, ...) plus the energy figures
      ``energy_j``, ``energy_per_output_token_j`` and ``output_tokens_per_j`` of the record's
      energy value (:func:`~harness.record.run_record.scenario_energy_value`: the measured interval, first
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
    the interval is sure of regresses.

The rule (docs/statistics.md)
    The 95 % interval of the worsening against the allowed worsening: all beyond it is a
    ``regression``, all within it a ``pass`` (all better than its negative an ``improvement``),
    straddling it, or without any noise estimate, ``inconclusive`` (with the repeats a side that
    would resolve it). Each figure's noise: lm-eval's stderr (accuracy); per-document
    differences with an exact McNemar or sign-flip test (accuracy with sample logs); the
    spread of per-repeat values (performance with repeats); the run's batch-means error
    (performance, one repeat); an exact binomial test with a tolerated share (``failed``).
    Holm (default) or Benjamini–Hochberg over the run's checks keeps false alarms of a family
    at α; the report names the rule.

Paired accuracy
    Given the two runs' sample-log folders (the CLI finds them: ``samples/`` of a run, the
    ``<baseline>.samples/`` copy that ``harness baseline set`` keeps), a task is compared per
    document; the reason names the documents that flipped each way.

Validity
    A gated scenario point flagged invalid (``valid: false``) in either run makes the report
    refused (exit 2) with the reasons; ``--allow-mismatch`` does not wave it through.

Verdicts (worst first): ``regression``, ``missing`` (fail); ``inconclusive`` (fails unless
``--inconclusive pass``); ``improvement`` (time to refresh the baseline), ``pass``, ``new`` (no
baseline figure), ``unmeasured`` (in neither run, e.g. energy without a GPU) (do not fail).

Thresholds come from the candidate's suite (``record.suite.spec['gates']``); a suite that
declares none gets :func:`default_thresholds`.

Layout: :mod:`~harness.gate.report` (value types), :mod:`~harness.gate.compare` (the pure
comparison: thresholds, figures and their noise, like for like), :mod:`~harness.gate.rules`
(the verdict rules) and :mod:`~harness.gate.render` (terminal, Markdown, JUnit); the
commands `harness gate` and `harness baseline` are :mod:`harness.commands.gate`, outside this
package so that their --help imports none of it. Every public name is imported here, so ``from harness.gate import compare`` keeps working.
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
