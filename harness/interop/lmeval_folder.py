"""Read an lm-eval ``--output_path`` folder: ``results_<date>.json`` and ``samples_<task>_<date>.jsonl``.

PATH is the folder (searched below for its newest results file) or one results file. Every
task in ``results`` becomes a task of the record with lm-eval's own figures (the headline
metric chosen as the harness chooses it); each task's sample log is copied to
``samples/<task>.jsonl`` of the run, where the gate pairs documents with another run's.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.interop.common import Fields, ImportedRun, ImportFormatError, read_json, read_jsonl


def _results_file(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.rglob("results_*.json"), key=lambda p: p.name)
    if not found:
        raise ImportFormatError(path, "folder", "an lm-eval --output_path folder with a results_<date>.json")
    return found[-1]


def read_lmeval_folder(path: Path) -> ImportedRun:
    """Parse the newest results file under ``path`` and its sample logs."""
    from harness.accuracy.lmeval import task_result

    results_path = _results_file(path)
    f = Fields(results_path, read_json(results_path))
    res = f.sub("results")
    if not res.obj:
        raise ImportFormatError(results_path, "results", "at least one task")
    stamp = results_path.stem.removeprefix("results_")
    out: dict[str, Any] = f.obj
    tasks = []
    samples: dict[str, Path] = {}
    for name, raw in res.obj.items():
        t = Fields(results_path, raw, f"results.{name}")
        metrics: dict[str, float | None] = {}
        for key, value in t.obj.items():
            if key in ("alias", "sample_len") or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                metrics[key] = None if isinstance(value, float) and math.isnan(value) else float(value)
            elif value == "N/A":
                metrics[key] = None
        if not any(v is not None for k, v in metrics.items() if "_stderr" not in k):
            raise ImportFormatError(results_path, f"results.{name}", "at least one numeric metric")
        log = results_path.with_name(f"samples_{name}_{stamp}.jsonl")
        samples_path = None
        if log.is_file():
            for n, row in enumerate(read_jsonl(log), start=1):
                if not isinstance(row, dict) or "doc_id" not in row:
                    raise ImportFormatError(log, f"line {n}", "an lm-eval sample with a doc_id")
            samples[f"{name}.jsonl"] = log
            samples_path = f"samples/{name}.jsonl"
        tasks.append(task_result(out, name, metrics, samples_path=samples_path))
    cfg: dict[str, Any] = out["config"] if isinstance(out.get("config"), dict) else {}
    model_args = cfg.get("model_args")
    args = _model_args(model_args)
    model = str(
        out.get("model_name") or args.get("model") or args.get("pretrained") or cfg.get("model") or "unknown"
    )
    started = _date(out, results_path)
    total = out.get("total_evaluation_time_seconds")
    seconds = float(total) if isinstance(total, int | float | str) and _is_number(total) else 0.0
    unmeasured = {"scenarios": "an lm-eval folder has no load measurement"}
    if not seconds:
        unmeasured["finished_at"] = "the file has no total_evaluation_time_seconds"
    return ImportedRun(
        tool="lm-eval",
        version=str(out["lm_eval_version"]) if out.get("lm_eval_version") else None,
        files=[results_path, *samples.values()],
        model=model,
        tokenizer=args.get("tokenizer") or args.get("pretrained"),
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        endpoint=args.get("base_url"),
        command=None,
        tasks=tasks,
        samples=samples,
        packages={"transformers": str(out["transformers_version"])}
        if out.get("transformers_version")
        else {},
        unmeasured=unmeasured
        | {"source.command": "lm-eval's results keep the configuration, not the command line"},
    )


def _is_number(x: object) -> bool:
    try:
        float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _model_args(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        pairs = (kv.split("=", 1) for kv in raw.split(",") if "=" in kv)
        return {k.strip(): v.strip() for k, v in pairs}
    return {}


def _date(out: dict[str, Any], path: Path) -> datetime:
    date = out.get("date")
    if isinstance(date, int | float):
        return datetime.fromtimestamp(float(date), timezone.utc)
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
