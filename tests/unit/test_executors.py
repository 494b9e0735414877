"""Executor pieces that need no cluster: Ray task options, run folders over the wire, driver records."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.executors import ExecutorError, get_executor
from harness.executors.base import CellEvent, describe_event, failed_cell_record
from harness.executors.ray_cluster import _pack, _unpack, forwarded_env, task_options
from harness.planning.cells import CellResources, plan_cells
from harness.run.environment import collect_environment
from harness.spec.suite import load_suite
from harness.storage.store import load_records, read_record, runs_dir, write_record
from tests.factories import make_record

CPU = CellResources(num_gpus=1, num_cpus=1, memory_bytes=2 * 2**30)


def test_cpu_cells_ask_for_cores_and_memory_gpu_cells_for_gpus() -> None:
    assert task_options(CPU, gpu_cluster=False) == {
        "num_cpus": 1,
        "memory": 2 * 2**30,
        "max_retries": 1,
        "retry_exceptions": False,
    }
    tp2 = CPU.model_copy(update={"num_gpus": 2, "tensor_parallel_size": 2})
    assert task_options(tp2, gpu_cluster=True) == {
        "num_cpus": 1,
        "num_gpus": 2,
        "max_retries": 1,
        "retry_exceptions": False,
    }
    h100 = tp2.model_copy(update={"accelerator_type": "H100"})
    assert task_options(h100, gpu_cluster=False)["accelerator_type"] == "H100"
    # An engine spread over nodes by Ray: its GPUs belong to vLLM's own placement group.
    multi = tp2.model_copy(update={"distributed_executor_backend": "ray"})
    assert task_options(multi, gpu_cluster=True)["num_gpus"] == 0


def test_only_the_harness_settings_travel_with_a_task() -> None:
    env = {"HARNESS_CPU_KVCACHE_GIB": "1", "HF_TOKEN": "secret", "PATH": "/bin"}
    assert forwarded_env(env) == {"HARNESS_CPU_KVCACHE_GIB": "1"}


def test_a_run_folder_crosses_the_wire_whole_and_lands_atomically(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    rec = make_record(run_id="run-x")
    d = runs_dir(worker) / rec.run_id
    write_record(d, rec)
    (d / "requests").mkdir()
    (d / "requests" / "c1.parquet").write_bytes(bytes(range(256)))
    (d / "engine.log").write_text("INFO ready\n")
    payload = {"run_id": rec.run_id, "node": "abcd1234 (127.0.0.1)", "tar": _pack(d)}
    driver = tmp_path / "driver"
    assert _unpack(payload, driver) == rec
    got = runs_dir(driver) / rec.run_id
    assert (got / "requests" / "c1.parquet").read_bytes() == bytes(range(256))
    assert (got / "engine.log").read_text() == "INFO ready\n"
    assert not any((driver / ".incoming").iterdir())
    # The same folder arriving twice (a retried task that did report) is not a second run.
    assert _unpack(payload, driver) == rec and len(load_records(driver).records) == 1


def test_driver_record_for_a_dead_cell(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [tiny-llama]\n")
    [cell] = plan_cells(load_suite(suite))
    started = datetime.now(timezone.utc)
    worker_env = collect_environment({}).model_copy(update={"hostname": "gpu-node-7"}).model_dump(mode="json")
    rec = failed_cell_record(cell, tmp_path / "r", "WorkerCrashedError: died twice", started, worker_env)
    assert rec.status == "failed" and rec.error == "WorkerCrashedError: died twice"
    assert rec.fingerprint == cell.fingerprint and rec.environment.hostname == "gpu-node-7"
    assert read_record(runs_dir(tmp_path / "r") / rec.run_id) == rec
    assert rec.model.preset == "tiny-llama" and rec.suite.sha256 == cell.plan.suite.sha256
    # Without the worker's report the driver's environment is used, and the record says so.
    rec2 = failed_cell_record(cell, tmp_path / "r", "NodeDiedError", started)
    assert rec2.error is not None and "environment recorded is the driver's" in rec2.error
    line = describe_event(CellEvent(cell, "running", node="abcd1234 (127.0.0.1)", attempt=2))
    assert "running[/] on node abcd1234 (127.0.0.1) (attempt 2)" in line and cell.fingerprint in line


def test_unknown_executor_is_a_clear_error() -> None:
    with pytest.raises(ExecutorError, match="choose from local, ray"):
        get_executor("slurm")


def test_the_kuberay_example_runs_a_valid_command() -> None:
    import shlex

    import yaml

    from harness.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    job, pvc = yaml.safe_load_all((root / "examples" / "kuberay-rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and pvc["kind"] == "PersistentVolumeClaim"
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "harness"
    args = build_parser().parse_args(argv[1:])
    assert args.executor == "ray" and args.resume and args.results == "/results"
    cells = plan_cells(load_suite(args.suite), args.model)
    assert len(cells) == 4 and all(c.resources.num_gpus == 1 for c in cells)
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert workers["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_no_cluster_at_the_address_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from harness.cli import main

    with socket.socket() as s:  # a loopback port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [tiny-llama]\n")
    rc = main(
        [
            "run",
            str(suite),
            "--executor",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--results",
            str(tmp_path),
        ]
    )
    assert rc == 2 and f"no Ray cluster at '127.0.0.1:{port}'" in capsys.readouterr().err
    assert not runs_dir(tmp_path).exists()
