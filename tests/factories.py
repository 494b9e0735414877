"""Valid, realistic run records (and the files beside them) for tests and benchmarks.

``make_record`` builds a complete :class:`~harness.record.run_record.RunRecord` from a few headline
figures and derives the rest consistently (durations from throughput, percentiles from the
median, energy from the tokens). ``write_run`` stores it the way the runner does, with
per-request tables and GPU samples when asked. ``generate_results`` fills a results folder
with many runs of many models, for scale tests.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from harness.arch import record_analytics
from harness.model.presets import PRESETS
from harness.record.analytics import RecordAnalytics
from harness.record.load import LoadShape
from harness.record.run_record import (
    EngineInfo,
    Environment,
    GpuInfo,
    GpuPhaseTelemetry,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SuiteInfo,
    TaskResult,
    Unmeasured,
)
from harness.storage.store import write_record

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc)

HARDWARE: dict[str, dict[str, Any]] = {
    "cpu": {"cpu_model": "AMD EPYC 7B13", "cpu_count": 2, "gpus": [], "gpu_reason": "no NVIDIA GPU visible"},
    "h100": {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8480+",
        "cpu_count": 16,
        "gpus": [
            GpuInfo(
                index=0,
                name="NVIDIA H100 80GB HBM3",
                uuid="GPU-0f3c",
                memory_total_bytes=85_520_809_984,
                driver_version="550.54.15",
            )
        ],
        "gpu_reason": None,
    },
    "a10g": {
        "cpu_model": "AMD EPYC 7R32",
        "cpu_count": 8,
        "gpus": [
            GpuInfo(
                index=0, name="NVIDIA A10G", memory_total_bytes=24_146_608_128, driver_version="535.104.05"
            )
        ],
        "gpu_reason": None,
    },
}

SMOKE_TASKS = {"harness_capitals": 0.62, "harness_opposites": 0.48, "harness_arithmetic": 0.31}
STANDARD_TASKS = {
    "arc_challenge": 0.55,
    "hellaswag": 0.79,
    "mmlu": 0.60,
    "truthfulqa_mc2": 0.42,
    "winogrande": 0.74,
    "gsm8k": 0.38,
}
# Task -> (headline metric, lm-eval filter, shots) as suites/standard.yaml runs it; other tasks
# get plain "acc" with no filter and no shots, like the smoke suite's own tasks.
TASK_SETTINGS: dict[str, tuple[str, str, int]] = {
    "arc_challenge": ("acc_norm", "none", 25),
    "hellaswag": ("acc_norm", "none", 10),
    "mmlu": ("acc", "none", 5),
    "truthfulqa_mc2": ("acc", "none", 0),
    "winogrande": ("acc", "none", 5),
    "gsm8k": ("exact_match", "strict-match", 5),
}
SMOKE_SCENARIOS: dict[str, dict[str, Any]] = {
    "c1-128-32": {"concurrency": 1, "input_tokens": 128, "output_tokens": 32, "num_requests": 8},
    "rate4-128-32": {
        "request_rate": 4.0,
        "concurrency": 8,
        "input_tokens": 128,
        "output_tokens": 32,
        "num_requests": 24,
    },
}


def environment(
    hardware: str = "cpu", *, gpus: list[str | GpuInfo] | None = None, **overrides: Any
) -> Environment:
    """The environment of a machine in ``HARDWARE``; ``gpus`` (NVML names or GpuInfo) replaces its GPUs."""
    hw = HARDWARE[hardware]
    fields: dict[str, Any] = {
        "harness_version": "0.1.0",
        "git_sha": "3e4ae1d0c0ffee",
        "git_dirty": False,
        "python": "3.11.9",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "hostname": f"bench-{hardware}",
        "packages": {"vllm": "0.11.0", "lm-eval": "0.4.13", "torch": "2.8.0", "transformers": "4.57.1"},
        "cpu_model": hw["cpu_model"],
        "cpu_count": hw["cpu_count"],
        "memory_total_bytes": 128 * 2**30,
        "gpus": hw["gpus"],
        "gpu_reason": hw["gpu_reason"],
    }
    if gpus is not None:
        fields["gpus"] = [
            g if isinstance(g, GpuInfo) else GpuInfo(index=i, name=g) for i, g in enumerate(gpus)
        ]
        fields["gpu_reason"] = None if gpus else "no NVIDIA GPU visible"
    fields.update(overrides)
    return Environment(**fields)


def make_scenario(
    name: str,
    *,
    concurrency: int | None = 1,
    request_rate: float | None = None,
    input_tokens: int = 128,
    output_tokens: int = 32,
    num_requests: int = 8,
    output_throughput: float = 120.0,
    median_ttft_ms: float = 40.0,
    median_tpot_ms: float = 8.0,
    failed: int = 0,
    energy_j: float | None = None,
    gpu_peak_memory_bytes: int = 61 * 2**30,
    requests_path: str | None = "default",
    errors: list[str] | None = None,
) -> ScenarioResult:
    """A scenario whose aggregates agree with each other (tokens, durations, percentiles)."""
    completed = num_requests - failed
    total_out = completed * output_tokens
    duration = total_out / output_throughput if output_throughput > 0 else 1.0
    e2el = median_ttft_ms + median_tpot_ms * (output_tokens - 1)

    def spread(prefix: str, median: float | None) -> dict[str, float | None]:
        if median is None or completed == 0:
            return {f"{k}_{prefix}_ms": None for k in ("mean", "median", "std", "p90", "p99")}
        return {
            f"mean_{prefix}_ms": median * 1.05,
            f"median_{prefix}_ms": median,
            f"std_{prefix}_ms": median * 0.2,
            f"p90_{prefix}_ms": median * 1.3,
            f"p99_{prefix}_ms": median * 1.8,
        }

    energy = None
    if energy_j is not None:
        energy = PhaseResources(
            duration_s=duration,
            engine_cpu_s=duration * 0.9,
            engine_peak_rss_bytes=3 * 2**30,
            energy_j=energy_j,
            gpu=GpuPhaseTelemetry(
                gpu_count=1,
                duration_s=duration,
                energy_j=energy_j,
                energy_source="counter",
                avg_power_w=energy_j / duration,
                peak_memory_used_bytes=gpu_peak_memory_bytes,
            ),
        )
    return ScenarioResult(
        name=name,
        settings=ScenarioSettings(
            load=LoadShape(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                num_requests=num_requests,
                concurrency=concurrency,
                request_rate=request_rate,
                warmup_requests=2,
            ),
            seed=1234,
        ),
        completed=completed,
        failed=failed,
        duration=duration,
        total_input_tokens=completed * input_tokens,
        total_output_tokens=total_out,
        request_throughput=completed / duration,
        output_throughput=output_throughput if completed else 0.0,
        total_token_throughput=completed * (input_tokens + output_tokens) / duration,
        **spread("ttft", median_ttft_ms),
        **spread("tpot", median_tpot_ms),
        **spread("itl", median_tpot_ms),
        **spread("e2el", e2el),
        max_concurrency_reached=concurrency or 1,
        client_cpu_s=duration * 0.05,
        client_cpu_us_per_output_token=duration * 0.05e6 / total_out if total_out else None,
        errors=errors or [],
        requests_path=f"requests/{name}.parquet" if requests_path == "default" else requests_path,
        resources=energy,
    )


def task_result(name: str, val: float | tuple[float, float | None], **overrides: Any) -> TaskResult:
    """A task result keyed the way lm-eval reports it (``metric,filter`` and ``metric_stderr,filter``);
    ``overrides`` replace any field (``version``, ``num_fewshot``, ...)."""
    value, stderr = (val, 0.02) if isinstance(val, (int, float)) else val
    metric, filt, shots = TASK_SETTINGS.get(name, ("acc", "", 0))
    sep = "," if filt else ""
    metrics: dict[str, float | None] = {f"{metric}{sep}{filt}": value, f"{metric}_stderr{sep}{filt}": stderr}
    if metric == "acc_norm":  # lm-eval reports plain accuracy beside the normalised one
        metrics |= {"acc,none": max(0.0, value - 0.02), "acc_stderr,none": stderr}
    if name == "gsm8k":
        metrics |= {"exact_match,flexible-extract": min(1.0, value + 0.02)}
    fields: dict[str, Any] = {
        "name": name,
        "metric": metric,
        "value": value,
        "stderr": stderr,
        "n_samples": 100,
        "num_fewshot": shots,
        "version": "1.0",
        "metrics": metrics,
        "samples_path": f"samples/{name}.jsonl",
    }
    return TaskResult(**{**fields, **overrides})


def run_id_for(model: str, suite: str, started_at: datetime) -> str:
    digest = hashlib.sha1(f"{model}|{suite}|{started_at.isoformat()}".encode()).hexdigest()[:6]

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "_", text)[:40]

    return f"{started_at:%Y%m%d-%H%M%S}-{safe(model)}-{safe(suite)}-{digest}"


def make_record(
    model: str = "smollm2-135m",
    suite: str = "smoke",
    *,
    status: str = "ok",
    error: str | None = None,
    accuracy: Mapping[str, TaskResult | float | tuple[float, float | None]] | None = None,
    scenarios: Mapping[str, ScenarioResult | Mapping[str, Any]] | None = None,
    started_at: datetime | None = None,
    duration_s: float = 300.0,
    run_id: str | None = None,
    hardware: str = "cpu",
    family: str = "smollm",
    peak_rss_bytes: int | None = 2_700_000_000,
    energy_j: float | None = None,
    analytics: RecordAnalytics | Literal["auto"] | None = "auto",
    spec: dict[str, Any] | None = None,
    env: Environment | None = None,
    model_info: Mapping[str, Any] | None = None,
    engine_args: dict[str, Any] | None = None,
) -> RunRecord:
    """A complete, valid record. ``accuracy`` maps task -> value or (value, stderr); ``scenarios``
    maps name -> ScenarioResult or keyword arguments of :func:`make_scenario`. Defaults are the
    smoke suite's tasks and scenarios. On GPU hardware, scenarios get energy unless given.

    ``analytics="auto"`` computes the section as the runner does (``harness.arch.record_analytics``)
    when ``model`` is a preset, and leaves it out otherwise. ``spec`` is the stored suite spec,
    ``env`` replaces the ``hardware`` environment, ``model_info`` overrides fields of the model
    section and ``engine_args`` the engine's arguments."""
    started = started_at or T0
    if accuracy is None:
        accuracy = SMOKE_TASKS if suite == "smoke" else STANDARD_TASKS
    tasks = {
        name: (val if val.name == name else val.model_copy(update={"name": name}))
        if isinstance(val, TaskResult)
        else task_result(name, val)
        for name, val in accuracy.items()
    }
    if scenarios is None:
        scenarios = SMOKE_SCENARIOS
    perf = {}
    for name, sc in scenarios.items():
        if isinstance(sc, ScenarioResult):
            perf[name] = sc if sc.name == name else sc.model_copy(update={"name": name})
        else:
            kw = dict(sc)
            if hardware != "cpu" and "energy_j" not in kw:
                n_out = (kw.get("num_requests", 8) - kw.get("failed", 0)) * kw.get("output_tokens", 32)
                kw["energy_j"] = 0.35 * n_out
            perf[name] = make_scenario(name, **kw)
    no_energy = Unmeasured(reason="no NVIDIA GPU visible: no energy counter on this machine")
    phases = {
        "engine_start": PhaseResources(
            duration_s=25.0,
            engine_cpu_s=30.0,
            engine_peak_rss_bytes=peak_rss_bytes,
            energy=no_energy if hardware == "cpu" else None,
            energy_j=None if hardware == "cpu" else 4200.0,
        ),
        "accuracy": PhaseResources(
            duration_s=120.0,
            engine_cpu_s=200.0,
            engine_peak_rss_bytes=peak_rss_bytes,
            energy=no_energy if hardware == "cpu" else None,
            energy_j=None if hardware == "cpu" else 52000.0,
        ),
    }
    env = env or environment(hardware)
    engine_args = engine_args if engine_args is not None else {"dtype": "auto", "max_model_len": 2048}
    if analytics == "auto":
        analytics = None
        if model in PRESETS:
            analytics = record_analytics(
                PRESETS[model], performance=perf, accuracy=tasks, environment=env, engine_args=engine_args
            )
    return RunRecord(
        run_id=run_id or run_id_for(model, suite, started),
        status=status,  # type: ignore[arg-type]
        error=error,
        suite=SuiteInfo(
            name=suite,
            path=f"suites/{suite}.yaml",
            sha256="ab" * 32,
            spec=spec
            if spec is not None
            else {"name": suite, "seed": 1234, "performance": {"scenarios": list(scenarios)}},
        ),
        model=ModelInfo(
            **{
                "preset": model,
                "family": family,
                "source": f"HuggingFaceTB/{model}",
                "revision": "main",
                "served_name": model,
                **(model_info or {}),
            }
        ),
        engine=EngineInfo(
            kind="vllm-server",
            endpoint="http://127.0.0.1:8000",
            args=engine_args,
            command=["vllm", "serve", model, "--dtype", "auto"],
            startup_s=25.0,
            log_path="engine.log",
        ),
        environment=env,
        started_at=started,
        finished_at=started + timedelta(seconds=duration_s),
        tasks=list(tasks.values()),
        scenarios=list(perf.values()),
        resources=Resources(
            engine_peak_rss_bytes=peak_rss_bytes,
            phases=phases,
            energy_j=energy_j if energy_j is not None else (None if hardware == "cpu" else 60000.0),
            energy=no_energy if hardware == "cpu" else None,
        ),
        analytics=analytics,
    )


def write_run(
    results: Path,
    record: RunRecord,
    *,
    requests: bool = True,
    gpu_samples: bool = False,
    seed: int = 0,
    durable: bool = True,
) -> Path:
    """Store ``record`` under ``results/runs/<run_id>/`` with its per-request tables (and GPU samples).

    ``durable=False`` writes the same bytes without the store's fsync (for generating
    thousands of records for a benchmark)."""
    run_dir = Path(results) / "runs" / record.run_id
    if durable:
        write_record(run_dir, record)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "record.json").write_text(record.model_dump_json(indent=2) + "\n")
    rng = random.Random(seed)
    if requests:
        for s in record.performance.values():
            if s.requests_path:
                write_requests_table(run_dir / s.requests_path, s, rng)
    if gpu_samples:
        write_gpu_samples(run_dir / "telemetry" / "gpu_samples.parquet", record.duration_s, rng)
    return run_dir


def write_requests_table(path: Path, s: ScenarioResult, rng: random.Random) -> None:
    """Per-request rows whose latencies scatter (log-normally) around the scenario's medians."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = s.completed + s.failed
    ttft0 = s.median_ttft_ms or 50.0
    tpot0 = s.median_tpot_ms or 10.0
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "index",
            "send_s",
            "first_token_s",
            "end_s",
            "ttft_ms",
            "e2el_ms",
            "input_tokens",
            "output_tokens",
            "itl_ms",
            "error",
        )
    }
    t = 0.0
    for i in range(n):
        failed = i >= s.completed
        ttft = ttft0 * rng.lognormvariate(0, 0.25)
        itl = [tpot0 * rng.lognormvariate(0, 0.15) for _ in range(s.settings.load.output_tokens - 1)]
        e2el = ttft + sum(itl)
        rows["index"].append(i)
        rows["send_s"].append(t)
        rows["first_token_s"].append(None if failed else t + ttft / 1000)
        rows["end_s"].append(t + e2el / 1000)
        rows["ttft_ms"].append(None if failed else ttft)
        rows["e2el_ms"].append(None if failed else e2el)
        rows["input_tokens"].append(s.settings.load.input_tokens)
        rows["output_tokens"].append(0 if failed else s.settings.load.output_tokens)
        rows["itl_ms"].append([] if failed else itl)
        rows["error"].append("HTTP 503: server overloaded" if failed else None)
        t += e2el / 1000 / (s.settings.load.concurrency or 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)


def write_gpu_samples(path: Path, duration_s: float, rng: random.Random, interval_s: float = 1.0) -> None:
    """NVML-style samples: idle, then loading, then busy phases, one GPU."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = max(2, int(duration_s / interval_s))
    t = [i * interval_s for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    phase = ["engine_start" if x < 25 else "accuracy" if x < 145 else "performance" for x in t]
    power = [
        (70.0 if p == "engine_start" else 420.0 if p == "accuracy" else 520.0) + rng.uniform(-15, 15)
        for p in phase
    ]
    mem = [(min(x, 25) / 25 * 60 + 1) * 2**30 for x in t]
    pq.write_table(
        pa.table(
            {
                "t_s": t,
                "gpu_index": [0] * n,
                "power_w": power,
                "memory_used_bytes": [int(m) for m in mem],
                "gpu_util_pct": [0.0 if p == "engine_start" else 95.0 for p in phase],
                "mem_util_pct": [0.0 if p == "engine_start" else 60.0 for p in phase],
                "sm_clock_mhz": [1980] * n,
                "temperature_c": [45 + x / duration_s * 20 for x in t],
                "phase": phase,
            }
        ),
        path,
    )


# Model name -> (family, accuracy offset, speed factor): a spread like real small-to-mid models.
MODELS: dict[str, tuple[str, float, float]] = {
    "smollm2-135m": ("smollm", -0.25, 6.0),
    "smollm2-360m": ("smollm", -0.18, 4.0),
    "qwen2.5-0.5b": ("qwen", -0.10, 3.2),
    "qwen2.5-1.5b": ("qwen", -0.02, 2.0),
    "llama-3.2-1b": ("llama", -0.06, 2.4),
    "llama-3.2-3b": ("llama", 0.04, 1.3),
    "phi-3.5-mini": ("phi", 0.08, 1.0),
    "mistral-7b": ("mistral", 0.06, 0.6),
    "qwen2.5-7b": ("qwen", 0.12, 0.55),
    "llama-3.1-8b": ("llama", 0.10, 0.5),
    "deepseek-v2-lite": ("deepseek", 0.09, 0.7),
    "mixtral-8x7b": ("mixtral", 0.13, 0.35),
}


def generate_results(
    results: Path,
    n_runs: int,
    *,
    n_models: int = 12,
    seed: int = 0,
    failed_every: int = 25,
    requests: bool = True,
    first: int = 0,
    durable: bool = True,
) -> list[RunRecord]:
    """Write ``n_runs`` records round-robin over models, two suites and two kinds of hardware.

    Every ``failed_every``-th run is failed (no perf, an error message). Figures drift a little
    from run to run; returns the records in the order written. ``first`` numbers the runs from
    there (to add runs to a folder made by an earlier call); ``durable`` as for :func:`write_run`.
    """
    rng = random.Random(seed + first)
    names = list(MODELS)[:n_models]
    records = []
    for i in range(first, first + n_runs):
        model = names[i % len(names)]
        family, acc_off, speed = MODELS[model]
        suite = "smoke" if (i // len(names)) % 2 == 0 else "standard"
        hardware = "cpu" if suite == "smoke" else ("a10g" if names.index(model) % 3 == 2 else "h100")
        started = T0 + timedelta(hours=i)
        base_tasks = SMOKE_TASKS if suite == "smoke" else STANDARD_TASKS
        acc = {
            t: (min(0.99, max(0.01, v + acc_off + rng.gauss(0, 0.01))), 0.015 + rng.uniform(0, 0.01))
            for t, v in base_tasks.items()
        }
        hw_speed = {"cpu": 1.0, "a10g": 8.0, "h100": 25.0}[hardware]
        # Batch-1 decode is bandwidth-bound: an A10G (600 GB/s) takes about 3.5 times an H100's time.
        tpot_scale = 3.5 if hardware == "a10g" else 1.0
        joules_per_token = (2.0 if hardware == "a10g" else 1.2) / (speed + 0.5) * rng.uniform(0.95, 1.05)
        if suite == "smoke":
            scen = {
                "c1-128-32": {
                    "concurrency": 1,
                    "input_tokens": 128,
                    "output_tokens": 32,
                    "num_requests": 8,
                    "output_throughput": 20 * speed * hw_speed * rng.uniform(0.95, 1.05),
                    "median_ttft_ms": 120 / speed * rng.uniform(0.9, 1.1),
                    "median_tpot_ms": 50 / speed,
                },
                "rate4-128-32": {
                    "request_rate": 4.0,
                    "concurrency": 8,
                    "input_tokens": 128,
                    "output_tokens": 32,
                    "num_requests": 24,
                    "output_throughput": 60 * speed * hw_speed * rng.uniform(0.95, 1.05),
                    "median_ttft_ms": 300 / speed * rng.uniform(0.9, 1.1),
                    "median_tpot_ms": 90 / speed,
                },
            }
        else:
            scen = {
                "c1-512-128": {
                    "concurrency": 1,
                    "input_tokens": 512,
                    "output_tokens": 128,
                    "num_requests": 32,
                    "output_throughput": 4 * speed * hw_speed * rng.uniform(0.95, 1.05),
                    "median_ttft_ms": 30 / speed * rng.uniform(0.9, 1.1),
                    "median_tpot_ms": 9 / speed * tpot_scale,
                    "energy_j": joules_per_token * 32 * 128,
                },
                "c64-512-128": {
                    "concurrency": 64,
                    "input_tokens": 512,
                    "output_tokens": 128,
                    "num_requests": 512,
                    "output_throughput": 90 * speed * hw_speed * rng.uniform(0.95, 1.05),
                    "median_ttft_ms": 400 / speed * rng.uniform(0.9, 1.1),
                    "median_tpot_ms": 25 / speed * tpot_scale,
                    "energy_j": joules_per_token * 512 * 128 / 3,
                },
            }
        failed = failed_every > 0 and i % failed_every == failed_every - 1
        rec = make_record(
            model,
            suite,
            status="failed" if failed else "ok",
            error="engine did not become healthy within 600 s (see engine.log)" if failed else None,
            accuracy={} if failed else acc,
            scenarios={} if failed else scen,
            started_at=started,
            hardware=hardware,
            family=family,
            peak_rss_bytes=int((1.5 + 6 / speed) * 2**30),
        )
        write_run(
            results,
            rec,
            requests=requests and not failed,
            gpu_samples=hardware != "cpu" and i % 10 == 0,
            seed=i,
            durable=durable,
        )
        records.append(rec)
    return records


# ---------------------------------------------------------------- the gate's runs: known figures
#
# The gate's tests compare two records figure by figure, so their records are built with exact
# figures (a throughput of 200 tok/s, a TPOT σ of 0.2 ms over 16 requests) on a suite that
# declares `gates:`. `gate_record()` is make_record() with those defaults; keyword arguments
# change exactly the figures a test is about.

GATE_SUITE_SPEC: dict[str, Any] = {
    "name": "smoke",
    "models": ["tiny-llama"],
    "accuracy": {"tasks": [{"name": "harness_capitals"}, {"name": "harness_arithmetic", "num_fewshot": 3}]},
    "performance": {
        "scenarios": [
            {"name": "c1", "input_tokens": 128, "output_tokens": 32, "num_requests": 16, "concurrency": 1},
        ]
    },
    "gates": [
        {"metric": "harness_capitals", "max_abs_change": 0.05},
        {"metric": "harness_arithmetic", "max_abs_change": 0.05},
        {"metric": "output_throughput", "scenario": "c1", "max_rel_change": 0.10},
        {"metric": "p99_ttft_ms", "scenario": "c1", "max_rel_change": 0.20},
        {"metric": "mean_tpot_ms", "scenario": "c1", "max_rel_change": 0.10},
    ],
}


def spec_dict(**changes: Any) -> dict[str, Any]:
    """The gate suite's spec as a record stores it (validated and dumped), with top-level changes."""
    from harness.spec.suite import SuiteSpec

    return SuiteSpec.model_validate({**GATE_SUITE_SPEC, **changes}).model_dump(mode="json")


def gate_scenario(
    output_throughput: float = 200.0,
    p99_ttft_ms: float = 50.0,
    mean_tpot_ms: float = 5.0,
    std_tpot_ms: float = 0.2,
    energy_j: float | None = None,
    **figures: Any,
) -> ScenarioResult:
    """Scenario c1 of the gate suite (16 requests × 32 output tokens) with exactly these figures."""
    base = make_scenario(
        "c1",
        num_requests=16,
        output_throughput=output_throughput,
        median_tpot_ms=mean_tpot_ms,
        energy_j=energy_j,
        requests_path=None,
    )
    exact = {"p99_ttft_ms": p99_ttft_ms, "mean_tpot_ms": mean_tpot_ms, "std_tpot_ms": std_tpot_ms}
    return ScenarioResult.model_validate({**base.model_dump(), **exact, **figures})


def gate_record(
    run_id: str = "run-base",
    *,
    minutes: int = 0,
    accuracy: Mapping[str, TaskResult] | None = None,
    performance: Mapping[str, ScenarioResult] | None = None,
    spec: dict[str, Any] | None = None,
    env: Environment | None = None,
    model: Mapping[str, Any] | None = None,
    **kw: Any,
) -> RunRecord:
    """A tiny-llama run of the gate suite; ``minutes`` offsets its start so `--latest` order is controllable."""
    return make_record(
        "tiny-llama",
        "smoke",
        run_id=run_id,
        started_at=T0 + timedelta(minutes=minutes),
        accuracy=accuracy
        if accuracy is not None
        else {
            "harness_capitals": task_result("harness_capitals", (0.80, 0.04)),
            "harness_arithmetic": task_result("harness_arithmetic", (0.50, 0.05), num_fewshot=3),
        },
        scenarios=performance if performance is not None else {"c1": gate_scenario()},
        spec=spec_dict() if spec is None else spec,
        env=env,
        family="llama",
        model_info={
            "source": "/cache/tiny-llama",
            "revision": None,
            "checksum_sha256": "f" * 64,
            **(model or {}),
        },
        engine_args={"dtype": "float32", "max_model_len": 2048},
        analytics=None,
        **kw,
    )
