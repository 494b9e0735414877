"""Before any engine starts: is every task's dataset on this machine, or reachable?

lm-eval loads a task's dataset only when the task runs, so a dataset that cannot be had
used to fail a run a minute after the engine came up, with the Hub's bare error. Here each
task (groups and tags walked down to their tasks) is looked up in lm-eval's task index, and its
``dataset_path`` must be a local file or folder, or sit in the Hugging Face cache, or the Hub
must answer. Otherwise the run fails at once with the ways to provide it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.accuracy.lmeval import AccuracyError, prepare_task_folder, task_manager
from harness.spec.suite import TaskSpec

# `datasets` builders that read the files named in data_files rather than a Hub repository.
_FILE_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "webdataset", "imagefolder"}


class DatasetUnavailableError(AccuracyError):
    """A task's dataset is neither on this machine nor reachable; the message says how to provide it."""


class InputsUnavailableError(RuntimeError):
    """Both the model's weights and some task datasets are missing: all of it said at once."""


def missing_inputs(weights: Exception, datasets: Exception) -> InputsUnavailableError:
    """One error for missing weights and missing datasets, each with its remedy."""
    return InputsUnavailableError(f"weights: {weights}\n\ndatasets: {datasets}")


@dataclass(frozen=True)
class DatasetRef:
    task: str
    path: str
    name: str | None
    data_files: tuple[str, ...]


def task_datasets(tm: Any, name: str, seen: set[str] | None = None) -> Iterator[DatasetRef]:
    """The datasets a task, group or tag reads (KeyError for a name lm-eval does not know)."""
    seen = set() if seen is None else seen
    if name in seen:
        return
    seen.add(name)
    index = tm.task_index
    entry = index.get(name)
    if entry is None:
        raise KeyError(name)
    kind = entry.kind.name
    if kind == "TAG":
        for child, e in index.items():
            if name in getattr(e, "tags", ()):
                yield from task_datasets(tm, child, seen)
        return
    cfg = entry.cfg or {}
    if kind == "GROUP":
        children = cfg.get("task") or []
        for child in children if isinstance(children, list) else [children]:
            if isinstance(child, str):
                yield from task_datasets(tm, child, seen)
            elif isinstance(child, dict):
                yield from _inline_task(tm, child, seen)
        return
    ref = _ref(name, cfg)
    if ref is not None:
        yield ref


def _inline_task(tm: Any, cfg: dict[str, Any], seen: set[str]) -> Iterator[DatasetRef]:
    """A group member given as a mapping: its own dataset, or a registered task with overrides."""
    own = _ref(str(cfg.get("task", "?")), cfg)
    if own is not None:
        yield own
    elif isinstance(cfg.get("task"), str) and cfg["task"] in tm.task_index:
        yield from task_datasets(tm, cfg["task"], seen)


def _ref(task: str, cfg: dict[str, Any]) -> DatasetRef | None:
    path = cfg.get("dataset_path")
    if not isinstance(path, str):
        return None  # a Python task that loads its own data: nothing to check here
    files = (cfg.get("dataset_kwargs") or {}).get("data_files") or ()
    if isinstance(files, dict):
        flat: list[str] = []
        for v in files.values():
            flat.extend(v if isinstance(v, list) else [v])
        files = flat
    elif isinstance(files, str):
        files = [files]
    name = cfg.get("dataset_name")
    return DatasetRef(task, path, str(name) if name is not None else None, tuple(str(f) for f in files))


def _hub_cached(repo_id: str) -> bool:
    """A copy in the Hugging Face hub cache, or in the `datasets` cache, of this repository."""
    from huggingface_hub import constants

    snapshots = Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    datasets_cache = os.environ.get("HF_DATASETS_CACHE") or str(Path(constants.HF_HOME) / "datasets")
    prepared = Path(datasets_cache) / repo_id.replace("/", "___")
    return prepared.is_dir() and any(prepared.iterdir())


def check_dataset(ref: DatasetRef, hub_reachable: Callable[[], bool]) -> str | None:
    """None if the dataset can be had; else what is missing."""
    remote = [f for f in ref.data_files if "://" in f]
    local = [f for f in ref.data_files if "://" not in f]
    missing = [f for f in local if not glob.glob(os.path.expanduser(f))]
    if missing:
        return f"its data files are missing: {', '.join(missing)}"
    if ref.data_files and not remote:
        return None
    local_copy = Path(ref.path).expanduser().exists() or _hub_cached(ref.path)
    if not ref.data_files and ref.path not in _FILE_BUILDERS and local_copy:
        return None
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    if not offline and hub_reachable():
        return None
    why = "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set" if offline else "the Hugging Face Hub is not reachable"
    return f"it is not in the Hugging Face cache on this machine and {why}"


def preflight_datasets(
    tasks: list[TaskSpec],
    task_folder: Path,
    include_paths: tuple[str, ...] = (),
    hub_reachable: Callable[[], bool] = lambda: False,
) -> None:
    """Raise DatasetUnavailableError (with remedies) unless every task's dataset can be had.

    Args:
        task_folder: where the run's task definitions are written (the run folder's ``tasks/``).
        hub_reachable: probes the Hub once, only if some dataset is not on this machine.
    """
    folder = prepare_task_folder(task_folder, include_paths)
    tm = task_manager(str(folder))
    reach: list[bool] = []

    def reachable() -> bool:
        if not reach:
            reach.append(hub_reachable())
        return reach[0]

    # One line per dataset repository (mmlu's 57 subtasks share one), tasks named beside it.
    problems: dict[tuple[str, str], list[DatasetRef]] = {}
    for spec in tasks:
        try:
            refs = list(task_datasets(tm, spec.name))
        except KeyError:
            import difflib

            near = difflib.get_close_matches(spec.name, tm.all_tasks, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise AccuracyError(
                f"lm-eval knows no task {spec.name!r}{hint}; `lm_eval ls tasks` lists them, "
                "and accuracy.include_path adds folders of your own task YAML"
            ) from None
        for ref in dict.fromkeys(refs):
            problem = check_dataset(ref, reachable)
            if problem is not None:
                problems.setdefault((ref.path, problem), []).append(ref)
    if problems:
        raise DatasetUnavailableError(_remedies(problems))


def _remedies(problems: dict[tuple[str, str], list[DatasetRef]]) -> str:
    """One line per missing dataset, then each remedy once (not once per dataset)."""
    lines = [f"{len(problems)} dataset(s) cannot be had:"]
    hub: list[str] = []
    for (path, problem), refs in problems.items():
        tasks = list(dict.fromkeys(r.task for r in refs))
        names = ", ".join(tasks[:3]) + (f" and {len(tasks) - 3} more" if len(tasks) > 3 else "")
        configs = list(dict.fromkeys(r.name for r in refs if r.name))
        label = path + (
            f" ({', '.join(configs[:3])}{', ...' if len(configs) > 3 else ''})" if configs else ""
        )
        fix = ""
        if refs[0].data_files and path in _FILE_BUILDERS:
            fix = " Fix the data_files paths in the task's YAML."
        elif path not in hub:
            hub.append(path)
        lines.append(f"  - {label} of task{'s' if len(tasks) > 1 else ''} {names}: {problem}.{fix}")
    if hub:
        lines.append(
            "To provide them: set HF_HOME (or HF_DATASETS_CACHE) to a cache that holds them; or, where there "
            "is network, download each, copy the folders here and point each task's `dataset_path` at its "
            "folder (a task YAML in a folder named by accuracy.include_path):"
        )
        lines += [f"  huggingface-cli download --repo-type dataset {p} --local-dir DIR" for p in hub]
    return "\n".join(lines)
