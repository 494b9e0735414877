"""Accuracy fidelity: the served path equals lm-eval's `hf` backend, and the harness equals the
`lm_eval` CLI command it records.

* Reference: a bundled multiple-choice task through lm-eval's ``hf`` backend (transformers, in
  process) on tiny-mistral, whose tokenizer prepends BOS as Mistral 7B's does, and through
  ``local-completions`` on a vLLM server of the same checkpoint, in each request configuration
  (token ids or strings, ``add_bos_token`` on or off). The harness's configuration must match the
  reference per sample; the table of every configuration's largest difference is printed.
* Parity: the harness's evaluation of a task, then the recorded ``lm_eval run ...`` command run
  by lm-eval's own CLI against the same server: every metric and stderr identical.
* Preflight: a suite whose datasets cannot be had offline fails in seconds, before any engine.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.accuracy.lmeval import (
    local_completions_args,
    prepare_task_folder,
    task_manager,
    tokenizer_adds_bos,
)
from harness.engine.endpoint import served_max_model_len
from harness.engine.vllm_server import VllmServer
from harness.model.checkpoints import ensure_checkpoint

TASK = "harness_capitals"  # bundled, 4-way multiple choice
LIMIT = 24
# float32 on both sides; the two implementations differ by rounding only.
LOGLIK_TOL = 2e-3
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_mistral_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    path = ensure_checkpoint("tiny-mistral")
    log = tmp_path_factory.mktemp("tiny-mistral-server") / "engine.log"
    server = VllmServer(
        str(path),
        "tiny-mistral",
        ["--dtype", "float32", "--max-model-len", "2048", "--enforce-eager"],
        log_path=log,
        startup_timeout_s=900,
        seed=1234,
    )
    try:
        server.start()
        assert server.pid is not None
        yield server
    finally:
        server.stop()


def _logliks(out: dict[str, Any]) -> dict[tuple[int, int], float]:
    """(doc_id, choice) -> log-likelihood, from lm-eval's logged samples."""
    res: dict[tuple[int, int], float] = {}
    for sample in out["samples"][TASK]:
        for choice, resp in enumerate(sample["resps"]):
            res[(sample["doc_id"], choice)] = float(resp[0][0])
    return res


def _metrics(out: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in out["results"][TASK].items() if k != "alias"}


def test_served_path_reproduces_the_hf_backend(tiny_mistral_server: VllmServer, tmp_path: Path) -> None:
    from lm_eval import simple_evaluate

    path = str(ensure_checkpoint("tiny-mistral"))
    assert tokenizer_adds_bos(path), "tiny-mistral must encode with BOS, like Mistral 7B"
    tm = task_manager(str(prepare_task_folder(tmp_path / "tasks")))
    common: dict[str, Any] = dict(tasks=[TASK], limit=LIMIT, task_manager=tm, log_samples=True)
    reference = simple_evaluate(
        model="hf", model_args={"pretrained": path, "dtype": "float32"}, device="cpu", **common
    )
    assert reference is not None
    ref_ll = _logliks(reference)
    max_len = served_max_model_len(tiny_mistral_server.base_url, "tiny-mistral")
    assert max_len == 2048
    harness_args = local_completions_args(
        tiny_mistral_server.base_url, "tiny-mistral", path, max_len, None, tokenizer_adds_bos(path)
    )
    configs = {
        "token ids + add_bos_token (harness)": harness_args,
        "token ids, no add_bos_token": {**harness_args, "add_bos_token": False},
        "strings, no add_bos_token": {**harness_args, "tokenized_requests": False, "add_bos_token": False},
        "strings + add_bos_token": {**harness_args, "tokenized_requests": False, "add_bos_token": True},
    }
    table: dict[str, tuple[float, bool]] = {}
    for label, args in configs.items():
        served = simple_evaluate(model="local-completions", model_args=args, **common)
        assert served is not None
        ll = _logliks(served)
        assert ll.keys() == ref_ll.keys()
        diff = max(abs(ll[k] - ref_ll[k]) for k in ref_ll)
        table[label] = (diff, _metrics(served) == _metrics(reference))
    print(f"\nper-sample log-likelihood vs lm-eval hf backend ({TASK}, {len(ref_ll)} continuations):")
    for label, (diff, same) in table.items():
        print(f"  {label:40s} max |diff| = {diff:.3g}   metrics identical: {same}")
    diff, same = table["token ids + add_bos_token (harness)"]
    assert diff < LOGLIK_TOL
    assert same, "acc/acc_norm and their stderrs must equal the hf backend's exactly"
    # BOS matters on this model, so the test can tell the configurations apart.
    assert table["token ids, no add_bos_token"][0] > 10 * LOGLIK_TOL
    assert table["strings, no add_bos_token"][0] > 10 * LOGLIK_TOL


def _cli_results(command: str, out_dir: Path) -> dict[str, Any]:
    argv = shlex.split(command.split("  #")[0])
    assert argv[0] == "lm_eval"
    argv = [str(Path(sys.executable).with_name("lm_eval")), *argv[1:], "--output_path", str(out_dir)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(out_dir.rglob("results_*.json"))
    assert files, proc.stderr[-3000:]
    return dict(json.loads(files[-1].read_text()))


def test_harness_equals_the_recorded_lm_eval_command(tiny_mistral_server: VllmServer, tmp_path: Path) -> None:
    from harness.accuracy import evaluate_tasks
    from harness.spec.suite import AccuracySpec, TaskSpec

    path = str(ensure_checkpoint("tiny-mistral"))
    spec = AccuracySpec(
        batch_size=4,
        num_concurrent=2,
        tasks=[TaskSpec(name=TASK, limit=40), TaskSpec(name="harness_arithmetic", num_fewshot=3, limit=12)],
    )
    run_dir = tmp_path / "run"
    results = evaluate_tasks(
        spec.tasks,
        spec,
        base_url=tiny_mistral_server.base_url,
        served_name="tiny-mistral",
        tokenizer=path,
        run_dir=run_dir,
        max_length=2048,
    )
    assert set(results) == {TASK, "harness_arithmetic"}
    for name, result in results.items():
        assert result.lm_eval_command is not None
        print(f"\n{name}: {result.lm_eval_command}")
        assert '"max_length":2048' in result.lm_eval_command
        assert '"add_bos_token":true' in result.lm_eval_command
        assert "--seed 0,1234,1234,1234" in result.lm_eval_command
        cli = _cli_results(result.lm_eval_command, tmp_path / f"cli-{name}")
        cli_metrics = {
            k: v
            for k, v in cli["results"][name].items()
            if k not in ("alias", "sample_len") and isinstance(v, int | float)
        }
        ours = {k: v for k, v in result.metrics.items()}
        assert ours == cli_metrics, f"{name}: harness {ours} != lm_eval CLI {cli_metrics}"
        assert cli["n-samples"][name]["effective"] == result.n_samples
        assert result.value == cli_metrics[result.metric]
        assert result.stderr == cli_metrics[result.metric.replace(",", "_stderr,", 1)]
    assert results["harness_arithmetic"].metric.startswith("exact_match,")


def test_missing_dataset_fails_before_the_engine(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "empty-hf-home"),
        "HF_DATASETS_CACHE": str(tmp_path / "empty-hf-home" / "datasets"),
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("harness")),
            "run",
            "standard",
            "--model",
            "smollm2-135m",
            "--results",
            str(tmp_path / "results"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    records = list((tmp_path / "results").rglob("record.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    assert rec["status"] == "failed"
    assert "DatasetUnavailableError" in rec["error"]
    assert "allenai/ai2_arc" in rec["error"]
    assert "huggingface-cli download --repo-type dataset allenai/ai2_arc" in rec["error"]
    assert "HF_HOME" in rec["error"]
    assert rec["engine"] is None  # no engine was started
    assert not list((tmp_path / "results").rglob("engine.log"))
    print(f"\nfailed in {elapsed:.1f} s: {rec['error'][:300]}")
    assert elapsed < 120
