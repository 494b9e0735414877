"""The metric catalogue: every figure a run record holds, and what it means.

One entry per figure: its key (the record's field name, which is also its ``load_runs``
column and the name a gate threshold uses), its unit, which way is better, the label people
read, the :mod:`harness.formatting` kind it is shown with, where in the record it is read
from, and the peer whose definition it follows. The gate, ``harness compare``, the techniques
table, the dashboard's columns and the rigor summaries read direction, unit and label here;
nothing else decides them (from a name suffix or a list of its own).

A new figure is one entry in :data:`CATALOGUE` (see the README's "Adding a metric").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "none"]
Section = Literal["scenario", "energy", "run", "task", "setting", "under_load"]

# Where a definition comes from; a figure of our own says "harness".
VLLM_BENCH = "vllm bench serve (vllm/benchmarks/serve.py, calculate_metrics; vLLM 0.32)"
LM_EVAL = "lm-eval 0.4 (the task's own metric and its stderr)"
ML_ENERGY = "ML.ENERGY leaderboard (steady-state energy / tokens)"
HARNESS = "harness"


@dataclass(frozen=True)
class Metric:
    """One figure of a run record.

    Attributes:
        key: field name in the record part (``ScenarioResult``, ``EnergyValue``, ...), the
            ``load_runs`` column and the gate's metric name.
        unit: SI-style unit in words (``ms``, ``tokens/s``, ``J``, ``bytes``, ``1`` for a ratio).
        direction: ``higher`` or ``lower`` is better; ``none`` for a descriptive figure
            (counts of what was sent, settings) that a gate must be told the direction of.
        label: short label for tables and axes (unit included where it helps).
        fmt: the :mod:`harness.formatting` kind it is printed with.
        section: which record part holds it: ``scenario`` (``ScenarioResult``), ``energy``
            (the scenario's one energy value, :func:`scenario_energy_value`), ``run``, ``task``,
            ``setting`` (the load a scenario offered), ``under_load`` (a load point's accuracy
            paired against the idle run, ``accuracy_under_load``).
        source: the peer whose definition the figure follows.
        description: one sentence on what it measures.
    """

    key: str
    unit: str
    direction: Direction
    label: str
    fmt: str
    section: Section
    source: str
    description: str

    @property
    def higher_is_better(self) -> bool | None:
        """True, False, or None where the figure has no better side."""
        return {"higher": True, "lower": False, "none": None}[self.direction]


def _latency(stem: str, what: str) -> Iterator[Metric]:
    stats = (
        ("mean", "mean", "mean"),
        ("median", "p50", "median"),
        ("std", "σ", "standard deviation"),
        ("p90", "p90", "90th percentile"),
        ("p99", "p99", "99th percentile"),
    )
    for stat, short, words in stats:
        yield Metric(
            key=f"{stat}_{stem}_ms",
            unit="ms",
            direction="lower",
            label=f"{stem.upper()} {short} (ms)",
            fmt="ms",
            section="scenario",
            source=VLLM_BENCH,
            description=f"{words.capitalize()} {what} over the scenario's completed requests.",
        )


_LATENCIES = {
    "ttft": "time to first token (request sent to first streamed token)",
    "tpot": "time per output token after the first ((E2E - TTFT) / (output tokens - 1), per request)",
    "itl": "inter-token latency (gap between consecutive streamed chunks, pooled)",
    "e2el": "end-to-end latency (request sent to last token)",
}


def _scenario(
    key: str, unit: str, direction: Direction, label: str, fmt: str, source: str, desc: str
) -> Metric:
    return Metric(key, unit, direction, label, fmt, "scenario", source, desc)


def _energy(key: str, unit: str, direction: Direction, label: str, fmt: str, desc: str) -> Metric:
    return Metric(key, unit, direction, label, fmt, "energy", HARNESS, desc)


_ENTRIES: tuple[Metric, ...] = (
    _scenario("completed", "requests", "higher", "completed", "int", VLLM_BENCH, "Requests that completed."),
    _scenario("failed", "requests", "lower", "failed requests", "int", VLLM_BENCH, "Requests that failed."),
    _scenario("duration", "s", "lower", "duration (s)", "s", VLLM_BENCH, "First send to last completion."),
    _scenario(
        "total_input_tokens", "tokens", "none", "input tokens", "int", VLLM_BENCH, "Prompt tokens sent."
    ),
    _scenario(
        "total_output_tokens", "tokens", "none", "output tokens", "int", VLLM_BENCH, "Tokens generated."
    ),
    _scenario(
        "request_throughput",
        "requests/s",
        "higher",
        "req/s",
        "num",
        VLLM_BENCH,
        "Completed requests per second.",
    ),
    _scenario(
        "output_throughput",
        "tokens/s",
        "higher",
        "output tok/s",
        "tps",
        VLLM_BENCH,
        "Output tokens per second.",
    ),
    _scenario(
        "total_token_throughput",
        "tokens/s",
        "higher",
        "total tok/s",
        "tps",
        VLLM_BENCH,
        "(Input + output) tokens per second.",
    ),
    *(m for stem, what in _LATENCIES.items() for m in _latency(stem, what)),
    _scenario(
        "max_concurrency_reached",
        "requests",
        "none",
        "max in flight",
        "int",
        HARNESS,
        "Most requests in flight at once.",
    ),
    _scenario(
        "client_cpu_s", "s", "lower", "client CPU (s)", "s", HARNESS, "CPU seconds the load generator used."
    ),
    _scenario(
        "client_cpu_us_per_output_token",
        "µs/token",
        "lower",
        "client CPU µs/token",
        "num",
        HARNESS,
        "Load generator CPU per streamed output token.",
    ),
    _scenario(
        "request_goodput",
        "requests/s",
        "higher",
        "goodput (req/s)",
        "num",
        VLLM_BENCH,
        "Requests per second that met every SLO bound (vLLM's --goodput rule).",
    ),
    _scenario(
        "slo_attainment",
        "1",
        "higher",
        "SLO attainment",
        "acc",
        HARNESS,
        "Share of completed requests that met every SLO bound.",
    ),
    _energy("energy_j", "J", "lower", "energy (J)", "j", "Gross GPU energy over the scenario's window."),
    _energy(
        "energy_per_output_token_j",
        "J/token",
        "lower",
        "J/output tok",
        "j",
        "GPU energy per output token over the scenario's measured window (first send to last completion).",
    ),
    _energy("output_tokens_per_j", "tokens/J", "higher", "output tok/J", "num", "Output tokens per joule."),
    _energy(
        "energy_per_request_j", "J/request", "lower", "J/request", "j", "GPU energy per completed request."
    ),
    _energy("avg_power_w", "W", "lower", "avg power (W)", "num", "Mean GPU power over the window."),
    Metric(
        "engine_peak_rss_bytes",
        "bytes",
        "lower",
        "peak RSS",
        "bytes",
        "run",
        HARNESS,
        "Peak resident memory of the engine's process tree over the run.",
    ),
    Metric(
        "peak_gpu_memory_bytes",
        "bytes",
        "lower",
        "peak GPU mem",
        "bytes",
        "run",
        HARNESS,
        "Peak GPU memory used over the run (NVML, all GPUs).",
    ),
    Metric(
        "run_duration_s",
        "s",
        "none",
        "duration",
        "s",
        "run",
        HARNESS,
        "Wall time of the whole run, engine start to record written.",
    ),
    Metric(
        "capacity_at_slo",
        "requests or requests/s",
        "higher",
        "capacity at SLO",
        "num",
        "run",
        HARNESS,
        "Highest load (concurrency, or rate) meeting the suite's SLO at its target attainment.",
    ),
    Metric(
        "energy_per_output_token_at_slo_j",
        "J/token",
        "lower",
        "J/token at SLO",
        "j",
        "run",
        HARNESS,
        "GPU energy per output token at the capacity load.",
    ),
    Metric(
        "accuracy_mean",
        "1",
        "higher",
        "avg accuracy",
        "acc",
        "run",
        LM_EVAL,
        "Mean of a run's task headline metrics.",
    ),
    Metric(
        "accuracy",
        "1",
        "higher",
        "accuracy",
        "acc",
        "task",
        LM_EVAL,
        "A task's headline metric (its direction is the task's own higher_is_better).",
    ),
    Metric(
        "flips_worse",
        "documents",
        "lower",
        "flips worse",
        "int",
        "under_load",
        HARNESS,
        "Documents answered correctly idle and wrongly at the load point (summed over its tasks).",
    ),
    Metric(
        "answers_changed_share",
        "1",
        "lower",
        "answers changed",
        "acc",
        "under_load",
        HARNESS,
        "Share of documents whose answer changed at the load point against the idle run (largest task).",
    ),
    Metric("concurrency", "requests", "none", "concurrency", "int", "setting", VLLM_BENCH, "Most in flight."),
    Metric(
        "request_rate", "requests/s", "none", "offered req/s", "num", "setting", VLLM_BENCH, "Arrival rate."
    ),
)

CATALOGUE: dict[str, Metric] = {m.key: m for m in _ENTRIES}


class UnknownMetricError(KeyError):
    """A figure the catalogue does not list."""


def metric(key: str) -> Metric:
    """The catalogue entry for ``key``; raises :class:`UnknownMetricError` naming near keys."""
    try:
        return CATALOGUE[key]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(key, list(CATALOGUE), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise UnknownMetricError(f"{key!r} is not in the metric catalogue{hint}") from None


def higher_is_better(key: str) -> bool | None:
    """True if higher is better, False if lower is, None if the figure has no better side or
    the catalogue does not list it (a gate then asks the user for ``higher_is_better``)."""
    m = CATALOGUE.get(key)
    return None if m is None else m.higher_is_better


def label(key: str) -> str:
    """The label people read for ``key`` (the key itself if the catalogue does not list it)."""
    m = CATALOGUE.get(key)
    return key if m is None else m.label


def heading(key: str) -> str:
    """The catalogue label as a column heading (first letter upper, the rest as written)."""
    text = label(key)
    return text[:1].upper() + text[1:]


def in_section(section: Section) -> tuple[str, ...]:
    """The keys of one record part, in catalogue order."""
    return tuple(m.key for m in _ENTRIES if m.section == section)
