"""Accuracy through lm-eval: the only module that imports ``lm_eval``.

lm-eval's ``local-completions`` model talks to the engine's ``/v1/completions``;
loglikelihood tasks use ``echo`` + ``logprobs``, which vLLM supports. Each task runs as
its own ``simple_evaluate`` call so that every task keeps its own few-shot count and limit.

Bundled offline tasks live in ``harness/tasks/<task>/``; their YAML names data files as
``@DATA_DIR@/...``, and are rendered with absolute paths into the run folder, which thus
holds the exact task definitions that produced the scores.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.records import TaskResult
from harness.suite import TaskSpec

TASKS_DIR = Path(__file__).resolve().parent / "tasks"

# Preferred headline metric per lm-eval metric family, in order.
_HEADLINE = ("acc_norm", "acc", "exact_match", "mc2", "f1", "em")
# Tasks whose leaderboard metric is plain accuracy although lm-eval also reports acc_norm.
_HEADLINE_OVERRIDES = {
    "mmlu": "acc",
    "winogrande": "acc",
    "truthfulqa_mc2": "acc",
    "harness_capitals": "acc",
    "harness_opposites": "acc",
}


def bundled_tasks() -> list[str]:
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def render_bundled_tasks(dest: Path) -> Path:
    """Copy the bundled task YAMLs into `dest`, with data paths made absolute."""
    dest.mkdir(parents=True, exist_ok=True)
    for task_dir in TASKS_DIR.iterdir():
        for yml in task_dir.glob("*.yaml"):
            text = yml.read_text().replace("@DATA_DIR@", str(task_dir))
            (dest / yml.name).write_text(text)
    return dest


class AccuracyError(RuntimeError):
    """lm-eval could not evaluate a task (unknown task, engine errors, ...)."""


def evaluate_tasks(
    tasks: list[TaskSpec],
    base_url: str,
    served_name: str,
    tokenizer: str,
    run_dir: Path,
    seed: int,
    batch_size: int = 8,
    num_concurrent: int = 2,
    max_length: int = 2048,
    on_task: Callable[[str], None] | None = None,
) -> dict[str, TaskResult]:
    """Evaluate each task against the engine; per-sample logs go to `run_dir/samples/`."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    # lm-eval warns per task about batching and few-shot overrides we set on purpose.
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    tm = TaskManager(include_path=str(render_bundled_tasks(run_dir / "tasks")))
    model_args = {
        "model": served_name,
        "base_url": f"{base_url.rstrip('/')}/v1/completions",
        "tokenizer": tokenizer,
        "tokenizer_backend": "huggingface",
        "num_concurrent": num_concurrent,
        "max_retries": 2,
        "max_length": max_length,
        "seed": seed,
    }
    samples_dir = run_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, TaskResult] = {}
    for spec in tasks:
        if on_task is not None:
            on_task(spec.name)
        try:
            out = simple_evaluate(
                model="local-completions",
                model_args=model_args,
                tasks=[spec.name],
                num_fewshot=spec.num_fewshot,
                limit=spec.limit,
                batch_size=batch_size,
                task_manager=tm,
                log_samples=True,
                random_seed=seed,
                numpy_random_seed=seed,
                torch_random_seed=seed,
                fewshot_random_seed=seed,
                bootstrap_iters=1000,
            )
        except (KeyError, ValueError) as exc:
            raise AccuracyError(f"lm-eval could not run task {spec.name!r}: {exc}") from exc
        if out is None:
            raise AccuracyError(f"lm-eval returned no results for {spec.name!r}")
        results.update(_task_results(out, spec, samples_dir, run_dir))
    return results


def _task_results(
    out: dict[str, Any], spec: TaskSpec, samples_dir: Path, run_dir: Path
) -> dict[str, TaskResult]:
    """One TaskResult per task lm-eval reported (a group reports its subtasks' aggregate too)."""
    res: dict[str, TaskResult] = {}
    versions = out.get("versions", {})
    n_samples = out.get("n-samples", {})
    hib = out.get("higher_is_better", {})
    names = [spec.name] if spec.name in out["results"] else list(out["results"])
    for name in names:
        metrics_raw = out["results"][name]
        metrics: dict[str, float | None] = {}
        for key, value in metrics_raw.items():
            if key in ("alias", "sample_len") or not isinstance(value, int | float):
                continue
            metrics[key] = None if isinstance(value, float) and math.isnan(value) else float(value)
        headline = _headline(name, metrics)
        stderr = metrics.get(headline.replace(",", "_stderr,", 1))
        samples_path = None
        if out.get("samples", {}).get(name):
            samples_path = samples_dir / f"{name}.jsonl"
            with samples_path.open("w") as fh:
                for s in out["samples"][name]:
                    fh.write(json.dumps(s, default=str) + "\n")
        n = n_samples.get(name, {})
        metric_name = headline.split(",")[0]
        results_key = name
        res[results_key] = TaskResult(
            name=name,
            metric=metric_name,
            value=float(metrics[headline] or 0.0),
            stderr=stderr,
            higher_is_better=bool(hib.get(name, {}).get(metric_name, True)),
            n_samples=int(n.get("effective") or n.get("original") or 0) if isinstance(n, dict) else 0,
            num_fewshot=int(out.get("n-shot", {}).get(name, spec.num_fewshot)),
            version=None if versions.get(name) is None else str(versions.get(name)),
            metrics=metrics,
            samples_path=str(samples_path.relative_to(run_dir)) if samples_path else None,
        )
        if name == spec.name:
            break
    return res


def _headline(task: str, metrics: dict[str, float | None]) -> str:
    """The `metric,filter` key reported as the task's headline value."""
    keys = [k for k in metrics if "_stderr" not in k and metrics[k] is not None]
    preferred = _HEADLINE_OVERRIDES.get(task)
    order = ((preferred,) if preferred else ()) + _HEADLINE
    for metric in order:
        for k in keys:
            if k.split(",")[0] == metric:
                return k
    if not keys:
        raise AccuracyError(f"lm-eval reported no metric for {task!r}")
    return keys[0]
