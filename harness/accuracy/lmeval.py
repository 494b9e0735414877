"""Accuracy through lm-eval: with :mod:`harness.accuracy.preflight`, the only code that imports ``lm_eval``.

lm-eval's ``local-completions`` model talks to the engine's ``/v1/completions``;
loglikelihood tasks use ``echo`` + ``logprobs``, which vLLM supports. Each task runs as
its own ``simple_evaluate`` call, with exactly the arguments that the ``lm_eval run`` command
recorded beside its result would pass (:mod:`harness.accuracy.settings`).

Requests go as token ids (``tokenized_requests=True``), tokenized by lm-eval with the
model's own tokenizer; ``add_bos_token`` is set from that tokenizer's behaviour, so a Llama or
Mistral prompt starts with BOS exactly as lm-eval's ``hf`` backend (the reference behind
published scores) encodes it. Sending strings instead lets the server add the BOS that
lm-eval's context length does not count, and each continuation then picks up one context
token; tests/integration/test_accuracy_fidelity.py measures both against the ``hf`` backend.

Bundled offline tasks live in ``harness/tasks/<task>/``; their YAML names data files as
``@DATA_DIR@/...``, and are rendered with absolute paths into the run folder, together with
copies of the suite's ``include_path`` folders, so the run folder holds the exact task
definitions that produced the scores.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.accuracy.settings import TaskInvocation, resolve_invocation
from harness.record.run_record import TaskResult
from harness.safety.names import child
from harness.spec.suite import AccuracySpec, TaskSpec

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"

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


class AccuracyError(RuntimeError):
    """lm-eval could not evaluate a task (unknown task, engine errors, ...)."""


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


def prepare_task_folder(dest: Path, include_paths: tuple[str, ...] | list[str] = ()) -> Path:
    """The run's task folder: the bundled tasks plus a copy of each user task folder.

    It is the single ``--include_path`` of the recorded `lm_eval` command (the CLI takes one).
    """
    render_bundled_tasks(dest)
    for i, folder in enumerate(include_paths):
        target = dest / f"include-{i}-{Path(folder).name}"
        if not target.exists():
            shutil.copytree(folder, target, symlinks=False)
    return dest


_MANAGERS: dict[str, Any] = {}  # content digest of a task folder -> lm-eval's TaskManager over it


def task_manager(include_path: str) -> Any:
    """lm-eval's task index over its own tasks and the task folder `include_path`.

    Building one scans lm-eval's thousands of task files (about 7 s here), and every run renders
    the same tasks into a folder of its own. So the index is built once per distinct folder
    *content*, over a content-addressed copy in the harness cache (which, unlike a run folder,
    is never deleted under it); the run's own folder holds the same bytes, and the recorded
    ``lm_eval`` command points at it.
    """
    folder = Path(include_path)
    digest = folder_digest(folder)
    if digest not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        from harness.model.checkpoints import cache_dir

        canonical = cache_dir() / "lm-eval-tasks" / digest
        if not canonical.is_dir():
            tmp = canonical.with_name(f".{digest}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(folder, tmp, symlinks=False)
            try:
                tmp.rename(canonical)
            except OSError:  # another process made it first: same bytes
                shutil.rmtree(tmp, ignore_errors=True)
        if len(_MANAGERS) >= 4:  # a few suites' worth; an index holds every task of lm-eval
            _MANAGERS.pop(next(iter(_MANAGERS)))
        _MANAGERS[digest] = TaskManager(include_path=str(canonical))
    return _MANAGERS[digest]


def folder_digest(folder: Path) -> str:
    """SHA-256 (24 hex digits) over the relative paths and bytes of every file under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:24]


@functools.lru_cache(maxsize=8)
def tokenizer_adds_bos(tokenizer: str, chat_template: bool = False) -> bool:
    """Whether encoding plain text with this tokenizer's defaults starts with its BOS token.

    This is what lm-eval's ``hf`` backend gets (it encodes with the tokenizer's defaults), so
    ``local-completions`` needs ``add_bos_token`` set to it. With a chat template that writes
    the BOS itself, no second one is added (the ``hf`` backend skips it the same way).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    if tok.bos_token_id is None:
        return False
    ids = tok("Question:").input_ids
    adds = bool(ids) and ids[0] == tok.bos_token_id
    if adds and chat_template and tok.bos_token:
        try:
            text = tok.apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False)
        except (ValueError, TypeError):
            return adds
        if isinstance(text, str) and text.startswith(tok.bos_token):
            return False
    return adds


def local_completions_args(
    base_url: str,
    served_name: str,
    tokenizer: str,
    max_length: int,
    num_concurrent: int | None,
    add_bos_token: bool,
) -> dict[str, Any]:
    """``local-completions`` model arguments (each also in the recorded `lm_eval` command)."""
    args: dict[str, Any] = {
        "model": served_name,
        "base_url": f"{base_url.rstrip('/')}/v1/completions",
        "tokenizer": tokenizer,
        "tokenizer_backend": "huggingface",
        "tokenized_requests": True,
        "add_bos_token": add_bos_token,
        "max_length": max_length,
    }
    if num_concurrent is not None:
        args["num_concurrent"] = num_concurrent
    return args


def evaluate_tasks(
    tasks: list[TaskSpec],
    accuracy: AccuracySpec,
    base_url: str,
    served_name: str,
    tokenizer: str,
    run_dir: Path,
    max_length: int,
    include_paths: tuple[str, ...] = (),
    on_task: Callable[[str], None] | None = None,
) -> dict[str, TaskResult]:
    """Evaluate each task against the engine; per-sample logs go to `run_dir/samples/`.

    Args:
        max_length: context length lm-eval truncates to (the engine's ``max_model_len``).
    """
    from lm_eval import simple_evaluate

    # lm-eval warns per task about batching and few-shot overrides we set on purpose.
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    folder = prepare_task_folder(run_dir / "tasks", include_paths)
    tm = task_manager(str(folder))
    samples_dir = run_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, TaskResult] = {}
    for spec in tasks:
        if on_task is not None:
            on_task(spec.name)
        chat = (
            spec.apply_chat_template if spec.apply_chat_template is not None else accuracy.apply_chat_template
        )
        model_args = local_completions_args(
            base_url,
            served_name,
            tokenizer,
            max_length,
            accuracy.num_concurrent,
            tokenizer_adds_bos(tokenizer, chat_template=bool(chat)),
        )
        inv = resolve_invocation(accuracy, spec, model_args, str(folder))
        try:
            out = simple_evaluate(**inv.simple_evaluate_kwargs(), task_manager=tm, log_samples=True)
        except (KeyError, ValueError) as exc:
            raise AccuracyError(f"lm-eval could not run task {spec.name!r}: {exc}") from exc
        if out is None:
            raise AccuracyError(f"lm-eval returned no results for {spec.name!r}")
        results.update(task_results(out, inv, samples_dir, run_dir))
    return results


def task_results(
    out: dict[str, Any], inv: TaskInvocation, samples_dir: Path | None = None, run_dir: Path | None = None
) -> dict[str, TaskResult]:
    """One TaskResult from lm-eval's output (a group reports its subtasks' aggregate too).

    Every figure is lm-eval's own; what it does not report is None.
    """
    res: dict[str, TaskResult] = {}
    name = inv.task if inv.task in out["results"] else next(iter(out["results"]))
    metrics_raw = out["results"][name]
    metrics: dict[str, float | None] = {}
    for key, value in metrics_raw.items():
        if key in ("alias", "sample_len") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        metrics[key] = None if isinstance(value, float) and math.isnan(value) else float(value)
    samples_path = None
    rows = group_samples(out, name)
    if samples_dir is not None and run_dir is not None and rows:
        samples_path = child(samples_dir, name, suffix=".jsonl")  # a safe name inside samples/
        with samples_path.open("w") as fh:
            for s in rows:
                fh.write(json.dumps(s, default=str) + "\n")
    res[name] = task_result(
        out,
        name,
        metrics,
        samples_path=str(samples_path.relative_to(run_dir)) if samples_path and run_dir else None,
        lm_eval_command=inv.command(),
    )
    return res


def task_result(
    out: dict[str, Any],
    name: str,
    metrics: dict[str, float | None],
    *,
    samples_path: str | None,
    lm_eval_command: str | None = None,
) -> TaskResult:
    """The TaskResult of task ``name`` in lm-eval's output ``out`` (a run's or a saved results
    file's), given its numeric ``metrics``: the headline, its stderr, direction, shots, version."""
    headline = _headline(name, metrics)
    value = metrics[headline]
    assert value is not None  # _headline picks only reported values
    metric_name = headline.split(",")[0]
    hib = (out.get("higher_is_better") or {}).get(name, {}).get(metric_name)
    shots = (out.get("n-shot") or {}).get(name)
    version = (out.get("versions") or {}).get(name)
    return TaskResult(
        name=name,
        metric=headline,
        value=value,
        stderr=metrics.get(headline.replace(",", "_stderr,", 1)),
        higher_is_better=bool(hib) if hib is not None else None,
        n_samples=_n_samples(out, name),
        num_fewshot=int(shots) if isinstance(shots, int) else None,
        version=None if version is None else str(version),
        metrics=metrics,
        samples_path=samples_path,
        lm_eval_command=lm_eval_command,
    )


def group_samples(out: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A task's sample rows; for a group (mmlu), lm-eval writes them per subtask, so the rows of
    every leaf subtask, each tagged with its ``subtask`` (doc ids repeat across subtasks)."""
    samples = out.get("samples", {}) or {}
    if samples.get(name):
        return list(samples[name])
    rows: list[dict[str, Any]] = []
    for sub in out.get("group_subtasks", {}).get(name) or []:
        if sub == name:
            continue
        own = samples.get(sub)
        got = [{**r, "subtask": sub} for r in own] if own else group_samples(out, sub)
        rows.extend(got)
    return rows


def _n_samples(out: dict[str, Any], name: str) -> int | None:
    """Documents lm-eval evaluated: its `n-samples`, summed over a group's subtasks."""
    n = out.get("n-samples", {}).get(name)
    if isinstance(n, dict) and isinstance(n.get("effective"), int):
        return int(n["effective"])
    subtasks = out.get("group_subtasks", {}).get(name)
    if not subtasks:
        return None
    counts = [_n_samples(out, sub) for sub in subtasks]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


def _headline(task: str, metrics: dict[str, float | None]) -> str:
    """The `metric,filter` key reported as the task's headline value (its filter kept)."""
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
