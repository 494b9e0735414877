"""A two-cell campaign on a real loopback Ray cluster (head + worker node), through the CLI.

One cell's Ray worker is killed while its engine starts, twice: Ray retries it once, then the
driver writes its failed record; the other cell comes back ok, with the record and run folder a
local run has. No engine outlives its cell, no Ray process outlives `ray stop`, and no listener
of the cluster, the driver or an engine is bound outside 127.0.0.0/8. `--resume` with the local
executor then runs exactly the failed cell, and a second `--resume` runs nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.planning.cells import plan_cells
from harness.spec.suite import load_suite
from harness.storage.store import load_records, runs_dir
from tests.integration.checks import check_consistency
from tests.integration.raycluster import LoopbackCluster, listeners, outward

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]  # real vLLM via Ray

HARNESS = str(Path(sys.executable).with_name("harness"))
KILLED = "tiny-llama"  # this cell's worker is killed; tiny-mistral runs through

SUITE = """\
name: raycamp
models: [tiny-llama, tiny-mistral]
seed: 11
engine:
  max_model_len: 512
  extra_args: [--enforce-eager]
accuracy:
  tasks:
    - {name: harness_capitals, limit: 4}
performance:
  scenarios:
    - {name: c1, input_tokens: 16, output_tokens: 4, num_requests: 3, concurrency: 1, warmup_requests: 1}
resources: {num_cpus: 1, memory_gib: 2}
"""


def _engines(pids: set[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if "vllm.entrypoints" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def _shape(obj: Any) -> Any:
    """The key structure of a record (values dropped), to compare two records' shapes."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj and isinstance(obj[0], dict | list) else "list"
    return type(obj).__name__


def _files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


def test_two_cells_on_a_loopback_ray_cluster(tmp_path: Path) -> None:
    suite = tmp_path / "raycamp.yaml"
    suite.write_text(SUITE)
    cells = {c.plan.model.name: c for c in plan_cells(load_suite(suite))}
    results = tmp_path / "results"
    cluster = LoopbackCluster()
    log = (tmp_path / "driver.log").open("w")
    kills: list[int] = []
    engines_seen: set[int] = set()
    checked: list[tuple[int, str, str, int]] = []
    driver_started: float | None = None
    try:
        cluster.start()
        driver_started = time.monotonic()
        driver = subprocess.Popen(
            [HARNESS, "run", str(suite), "--executor", "ray", "--ray-address", cluster.address]
            + ["--results", str(results), "--no-progress"],
            env=cluster.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 900
        while driver.poll() is None and time.monotonic() < deadline:
            try:
                pids = (
                    cluster.pids() | {driver.pid} | {c.pid for c in psutil.Process(driver.pid).children(True)}
                )
            except psutil.Error:  # the driver just ended
                continue
            cluster.seen_pids |= pids
            found = listeners(pids)
            checked += found
            assert not outward(found), f"listeners outside loopback: {outward(found)}"
            for engine in _engines(pids):
                engines_seen.add(engine.pid)
                try:
                    worker = engine.parent()
                    title = " ".join(worker.cmdline()) if worker is not None else ""
                    ray_worker = "ray::" in title or "default_worker.py" in title
                    mine = KILLED in " ".join(engine.cmdline()) and ray_worker and len(kills) < 2
                    if mine and worker is not None and worker.pid not in kills:
                        # The cell's Ray worker dies mid-run (engine starting): a system failure.
                        worker.send_signal(signal.SIGKILL)
                        kills.append(worker.pid)
                except psutil.Error:
                    continue
            time.sleep(0.5)
        assert driver.poll() is not None, "campaign did not finish in 15 minutes"
        out = (tmp_path / "driver.log").read_text()
        assert driver.returncode == 1, out  # one cell failed
        assert len(kills) == 2, out

        # Engines die with their cell (PDEATHSIG), not with the cluster.
        end = time.monotonic() + 60
        while cluster.alive(engines_seen) and time.monotonic() < end:
            time.sleep(1)
        assert not cluster.alive(engines_seen), cluster.alive(engines_seen)
    finally:
        cluster.stop()
        log.close()
        if driver_started is None:  # the cluster never came up: nothing to wait for
            cluster.cleanup()
    end = time.monotonic() + 30
    while cluster.alive(cluster.seen_pids) and time.monotonic() < end:
        time.sleep(1)
    cluster.cleanup()
    assert not cluster.alive(cluster.seen_pids), cluster.alive(cluster.seen_pids)
    assert any(name.startswith(("raylet", "gcs_server")) for _, name, _, _ in checked), checked
    assert any(ip == "127.0.0.1" for _, name, ip, _ in checked if "python" in name or "vllm" in name.lower())

    out = (tmp_path / "driver.log").read_text()
    assert "queued" in out and "running on node" in out and "attempt 2" in out, out
    by_model = {r.model.preset: r for r in load_records(results).records}
    assert set(by_model) == {"tiny-llama", "tiny-mistral"}
    dead, ok = by_model[KILLED], by_model["tiny-mistral"]
    assert dead.status == "failed" and dead.error is not None
    assert "died 2 time(s) (retried once)" in dead.error, dead.error
    assert dead.fingerprint == cells[KILLED].fingerprint
    assert dead.environment.hostname  # the worker's own environment, reported when it started
    check_consistency(ok, runs_dir(results) / ok.run_id)
    assert ok.fingerprint == cells["tiny-mistral"].fingerprint

    # Resume with the local executor: exactly the failed cell runs, and its record has the same
    # shape and files as the one that came back from the cluster.
    resumed = subprocess.run(
        [HARNESS, "run", str(suite), "--resume", "--results", str(results), "--no-progress"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed: ran 1 cell(s), skipped 1" in resumed.stdout
    records = load_records(results).records
    [local] = [r for r in records if r.model.preset == KILLED and r.status == "ok"]
    check_consistency(local, runs_dir(results) / local.run_id)
    assert local.fingerprint == dead.fingerprint
    # Architecture analytics differ by family (sliding window...), not by executor.
    shape_local = _shape(json.loads(local.model_dump_json(exclude={"analytics"})))
    shape_ray = _shape(json.loads(ok.model_dump_json(exclude={"analytics"})))
    assert shape_local == shape_ray
    assert _files(runs_dir(results) / local.run_id) == _files(runs_dir(results) / ok.run_id)

    # A finished campaign: nothing to run, and no cluster is even contacted.
    again = subprocess.run(
        [HARNESS, "run", str(suite), "--resume", "--executor", "ray", "--ray-address", "127.0.0.1:9"]
        + ["--results", str(results)],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to run: all 2 cell(s) already have an ok record" in again.stdout
    assert len(load_records(results).records) == 3
