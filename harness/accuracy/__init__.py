"""Accuracy through lm-eval (the only package that imports ``lm_eval``).

* :mod:`~harness.accuracy.settings`: each task's lm-eval call and its `lm_eval` command (pure);
* :mod:`~harness.accuracy.lmeval`: runs the tasks and turns lm-eval's output into TaskResults;
* :mod:`~harness.accuracy.preflight`: every task's dataset checked before the engine starts.
"""

from __future__ import annotations

from harness.accuracy.lmeval import AccuracyError, bundled_tasks, evaluate_tasks, render_bundled_tasks
from harness.accuracy.preflight import DatasetUnavailableError, preflight_datasets

__all__ = [
    "AccuracyError",
    "DatasetUnavailableError",
    "bundled_tasks",
    "evaluate_tasks",
    "preflight_datasets",
    "render_bundled_tasks",
]
