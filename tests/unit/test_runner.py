"""Runner behaviour that needs no engine: unavailable weights, run ids, the request table."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import run_suite
from harness.loadgen.client import requests_from_parquet, write_requests_parquet
from harness.loadgen.metrics import RequestTiming, aggregate
from harness.run.runner import new_run_id
from harness.storage.store import read_record, runs_dir


def test_hub_model_without_network_fails_at_once_with_a_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    [rec] = run_suite("smoke", models=["mistral-7b"], results=tmp_path)
    assert rec.status == "failed"
    assert rec.error is not None
    assert "mistralai/Mistral-7B-v0.1 cannot be fetched" in rec.error
    assert "--model DIR" in rec.error and "huggingface-cli download" in rec.error
    assert rec.engine is None and not rec.accuracy and not rec.performance
    on_disk = read_record(runs_dir(tmp_path) / rec.run_id)
    assert on_disk == rec


def test_run_ids_sort_by_time_and_are_path_safe() -> None:
    rid = new_run_id("/data/My Model", "smoke")
    assert "/" not in rid and " " not in rid
    assert rid[:16].endswith("Z") and "My-Model-smoke" in rid


def test_request_table_round_trips_to_the_same_aggregates(tmp_path: Path) -> None:
    reqs = [
        RequestTiming(0, 0.0, 10, 0.2, 0.5, [0.2, 0.3, 0.5], 3),
        RequestTiming(1, 0.1, 10, 0.4, 1.0, [0.4, 0.6, 0.7, 1.0], 4),
        RequestTiming(2, 0.2, 10, None, 0.3, [], 0, "HTTP 500: x"),
    ]
    path = tmp_path / "r.parquet"
    write_requests_parquet(str(path), reqs)
    back = requests_from_parquet(path)
    a, b = aggregate(reqs), aggregate(back)
    for key, value in a.items():
        assert b[key] == (pytest.approx(value) if isinstance(value, float) else value), key


def test_missing_weights_and_datasets_are_said_together_each_remedy_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    suite = tmp_path / "offline.yaml"
    suite.write_text(
        "name: offline\nmodels: [mistral-7b]\naccuracy:\n  tasks:\n    - {name: arc_challenge, limit: 2}\n"
        "    - {name: arc_easy, limit: 2}\n    - {name: winogrande, limit: 2}\n"
    )
    [rec] = run_suite(suite, results=tmp_path)
    assert rec.status == "failed" and rec.error is not None and rec.engine is None
    assert rec.error.startswith("InputsUnavailableError: weights:")
    assert "mistralai/Mistral-7B-v0.1 cannot be fetched" in rec.error and "datasets:" in rec.error
    assert "allenai/ai2_arc" in rec.error and "winogrande" in rec.error
    assert rec.error.count("To provide them") == 1  # the remedy once, not once per dataset
