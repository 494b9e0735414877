"""The Ray executor: each cell a Ray task on some node of a cluster; the only module that imports Ray.

Each task runs the same `execute()` as the local executor, in a scratch results folder on its
node, and returns the run folder (record, per-request Parquet, samples, engine log, telemetry)
as a tar archive; the driver writes it into its own results store atomically
(:func:`harness.storage.merge.add_run_folder`), exactly where a local run would have put it.

Scheduling: a cell asks for ``num_gpus`` = tensor × pipeline parallel size on a cluster with
GPUs (and ``accelerator_type`` when the suite names one); on a CPU-only cluster for its CPU
cores and host memory. Ray runs as many cells at once as the nodes have room for.

Resume: with ``--resume`` the driver claims each cell before it submits it
(:mod:`harness.executors.claims`, the local executor's O_EXCL claim files in the driver's
results folder), skips a cell another live campaign has claimed or has meanwhile finished, and
gives the claim back when the cell's record is stored (ok or failed) or the campaign ends.

Faults: a task whose worker process or node dies is retried once (Ray's ``max_retries=1``,
which counts system failures only); if that fails too, the driver writes a ``failed`` record
with the reason. A cell that fails on its own is not retried: `execute()` turns every run
failure into a failed record and returns it normally. Ctrl-C on the driver cancels every cell:
running ones get KeyboardInterrupt (their engine is stopped and their failed record comes
back), and any still running after a grace period are killed with their worker, whose engine
dies with it (PDEATHSIG).

Models larger than a node (``--distributed-executor-backend ray`` in the engine arguments): the
``vllm serve`` the cell starts is a Ray driver of its own and places its GPU workers with a
placement group of one GPU per rank (PACK). The executor first reserves that same placement
group to wait until the cluster has the capacity free, notes the node of its first bundle,
releases it and starts the cell on that node with no GPU of its own, so that vLLM's placement
group finds the GPUs and its rank 0 on the cell's node. Another cell may take the GPUs in
between; vLLM then waits for them (and fails the cell after its own timeout).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.executors import claims
from harness.executors.base import CellEvent, CellState, EventSink, ExecutorError, failed_cell_record
from harness.planning.cells import Cell, CellResources
from harness.record.run_record import RunRecord
from harness.storage.merge import add_run_folder
from harness.storage.store import read_record, run_dir_of

RAY_MISSING = "the Ray executor needs Ray on this machine and on every node: pip install 'harness[ray]'"
FORWARDED_ENV_PREFIXES = ("HARNESS_",)  # the harness's own settings travel with each task
CANCEL_GRACE_S = 30.0  # after Ctrl-C: time for cancelled cells to stop their engine and report
SCRATCH_PREFIX = "harness-cell-"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(RAY_MISSING) from exc
    return ray


def task_options(res: CellResources, gpu_cluster: bool) -> dict[str, Any]:
    """Ray task options for a cell: what it requests, and retry on system failures only."""
    opts: dict[str, Any] = {"num_cpus": res.num_cpus, "max_retries": 1, "retry_exceptions": False}
    if gpu_cluster or res.accelerator_type:
        opts["num_gpus"] = 0 if res.multi_node else res.num_gpus
        if res.accelerator_type:
            opts["accelerator_type"] = res.accelerator_type
    else:
        opts["memory"] = res.memory_bytes
    return opts


def forwarded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


# ---------------------------------------------------------------- on the worker node


def _pack(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return buf.getvalue()


def _clean_stale_scratch() -> None:
    """Scratch folders of cells whose worker was killed (SIGKILL runs no cleanup)."""
    import psutil

    for d in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            pid = int(d.name[len(SCRATCH_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if not psutil.pid_exists(pid):
            shutil.rmtree(d, ignore_errors=True)


def run_cell_on_worker(
    cell: Cell, events: Any, driver_version: str, env_vars: dict[str, str] | None = None
) -> dict[str, Any]:
    """The Ray task body: report where it runs, execute the cell, return its run folder as bytes.

    `env_vars` (the driver's HARNESS_* settings) are set in this worker process for the cell; they
    travel as an argument rather than as a Ray runtime_env, which needs nothing beyond core Ray.
    """
    os.environ.update(env_vars or {})
    import ray

    from harness.run.environment import collect_environment
    from harness.run.runner import execute
    from harness.version import __version__

    started = datetime.now(timezone.utc)
    ctx = ray.get_runtime_context()
    node = f"{ctx.get_node_id()[:8]} ({ray.util.get_node_ip_address()})"
    env = collect_environment({"gpu_reason": "not probed: the cell ended before its GPU meter started"})
    with contextlib.suppress(Exception):  # progress lines must never fail a cell
        events.put(
            {
                "index": cell.index,
                "node": node,
                "pid": os.getpid(),
                "environment": env.model_dump(mode="json"),
            },
            timeout=10,
        )
    _clean_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        if __version__ != driver_version:
            record = failed_cell_record(
                cell,
                scratch,
                f"harness {__version__} is installed on node {node} but the driver runs {driver_version}: "
                "install the same version on every node",
                started,
                env.model_dump(mode="json"),
            )
        else:
            record = execute(cell.plan, scratch, fingerprint=cell.fingerprint)
        return {"run_id": record.run_id, "node": node, "tar": _pack(run_dir_of(scratch, record.run_id))}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- on the driver


def _unpack(payload: dict[str, Any], results: Path) -> RunRecord:
    """Write a returned run folder into the results store, atomically; the record it holds."""
    staging = Path(results) / ".incoming"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ray-", dir=staging))
    try:
        with tarfile.open(fileobj=io.BytesIO(payload["tar"]), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        run_dir = tmp / payload["run_id"]
        record = read_record(run_dir)
        item = add_run_folder(run_dir, results, record)
        if item.outcome not in ("added", "identical"):
            raise ExecutorError(f"cell {record.run_id}: could not store its run folder: {item.detail}")
        return record
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on a HOST:PORT with nothing listening (Ray itself retries for minutes)."""
    import socket

    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise ExecutorError(
            f"no Ray cluster at {address!r} ({exc}): start one with `ray start --head`, or pass "
            "--ray-address auto, HOST:PORT of a running head, or ray://HOST:10001"
        ) from exc


class RayExecutor:
    """Runs cells as Ray tasks on the cluster at `address` ('auto', 'HOST:PORT' or 'ray://HOST:10001')."""

    name = "ray"

    def __init__(self, address: str | None = None, resume: bool = False) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or "auto"
        self.resume = resume  # claim each cell before it is submitted (harness.executors.claims)

    def _connect(self, ray: Any) -> None:
        import logging

        try:
            ray.init(
                address=self.address,
                namespace="harness",
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as exc:
            raise ExecutorError(
                f"no Ray cluster at {self.address!r}: start one (`ray start --head`) or pass "
                f"--ray-address HOST:PORT or ray://HOST:10001 ({exc})"
            ) from exc

    def run(self, cells: list[Cell], results: Path, on_event: EventSink) -> list[RunRecord]:
        _probe(self.address)
        ray = _ray()
        self._connect(ray)
        try:
            return _Campaign(ray, cells, Path(results), on_event, resume=self.resume).run()
        finally:
            ray.shutdown()


class _Campaign:
    """One driver loop: submit, watch progress, collect run folders, turn deaths into records."""

    def __init__(
        self,
        ray: Any,
        cells: list[Cell],
        results: Path,
        on_event: EventSink,
        resume: bool = False,
        events: Any = None,
    ) -> None:
        from harness.version import __version__

        self.ray, self.cells, self.results, self.on_event = ray, cells, results, on_event
        self.resume = resume
        self.version = __version__
        self.gpu_cluster = ray.cluster_resources().get("GPU", 0) > 0
        if events is None:  # the workers' "started on node N" reports
            from ray.util.queue import Queue

            events = Queue(actor_options={"num_cpus": 0})
        self.events = events
        self.remote = ray.remote(run_cell_on_worker)
        self.refs: dict[Any, Cell] = {}
        self.reserving: dict[int, Any] = {}  # cell index -> placement group (multi-node cells)
        self.started: dict[int, datetime] = {}
        self.attempts: dict[int, int] = {}
        self.environment: dict[int, dict[str, Any]] = {}
        self.records: dict[int, RunRecord] = {}
        self.claimed: set[int] = set()  # cells whose claim file is ours (with --resume)
        self.since = time.time()

    def run(self) -> list[RunRecord]:
        try:
            return self._run()
        finally:  # whatever happened, no claim of ours outlives the campaign
            for cell in self.cells:
                self._release(cell)

    def _claim(self, cell: Cell) -> bool:
        """With --resume: whether this campaign may run `cell` (claimed now, not done meanwhile)."""
        if not self.resume:
            return True
        from harness.executors.local import done_since

        claim = claims.try_claim(self.results, cell.fingerprint)
        if not claim.ours:
            self.on_event(CellEvent(cell, "skipped", detail=f"claimed by another run ({claim.holder})"))
            return False
        self.claimed.add(cell.index)
        if done_since(self.results, cell.fingerprint, self.since):
            self._release(cell)
            self.on_event(CellEvent(cell, "skipped", detail="an ok record with this fingerprint appeared"))
            return False
        return True

    def _release(self, cell: Cell) -> None:
        if cell.index in self.claimed:
            self.claimed.discard(cell.index)
            claims.release(self.results, cell.fingerprint)

    def _run(self) -> list[RunRecord]:
        for cell in self.cells:
            if not self._claim(cell):
                continue
            self.started[cell.index] = datetime.now(timezone.utc)
            if cell.resources.multi_node and self.gpu_cluster:
                self._reserve(cell)
            else:
                self._submit(cell, {})
            self.on_event(CellEvent(cell, "queued"))
        try:
            while self.refs or self.reserving:
                self._admit_reserved()
                ready: list[Any] = []
                if self.refs:
                    ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=0.5)
                else:  # only placement groups to wait for
                    time.sleep(0.5)
                self._drain_events()
                for ref in ready:
                    self._collect(ref, self.refs.pop(ref))
            self._drain_events()
        except KeyboardInterrupt:
            self._cancel_all()
            raise
        return [self.records[c.index] for c in self.cells if c.index in self.records]

    def _submit(self, cell: Cell, extra: dict[str, Any]) -> None:
        opts = {
            **task_options(cell.resources, self.gpu_cluster),
            **extra,
            "name": f"harness-cell-{cell.index}",
        }
        ref = self.remote.options(**opts).remote(cell, self.events, self.version, forwarded_env())
        self.refs[ref] = cell

    def _reserve(self, cell: Cell) -> None:
        from ray.util.placement_group import placement_group

        bundles = [{"GPU": 1.0} for _ in range(cell.resources.num_gpus)]
        if cell.resources.accelerator_type:
            for b in bundles:
                b[f"accelerator_type:{cell.resources.accelerator_type}"] = 0.001
        self.reserving[cell.index] = placement_group(bundles, strategy="PACK")

    def _admit_reserved(self) -> None:
        from ray.util.placement_group import placement_group_table, remove_placement_group
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        for index, pg in list(self.reserving.items()):
            if not pg.wait(0):
                continue
            node_id = placement_group_table(pg)["bundles_to_node_id"][0]
            remove_placement_group(pg)
            del self.reserving[index]
            strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
            self._submit(
                self.cells[[c.index for c in self.cells].index(index)], {"scheduling_strategy": strategy}
            )

    def _drain_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except Exception:  # noqa: BLE001 - Empty, or the queue actor is gone
                return
            cell = next(c for c in self.cells if c.index == event["index"])
            self.attempts[cell.index] = self.attempts.get(cell.index, 0) + 1
            self.environment[cell.index] = event["environment"]
            attempt = self.attempts[cell.index]
            detail = f"pid {event['pid']}" + (", retried after its worker died" if attempt > 1 else "")
            self.on_event(
                CellEvent(
                    cell, "running", node=event["node"], pid=event["pid"], attempt=attempt, detail=detail
                )
            )

    def _collect(self, ref: Any, cell: Cell) -> None:
        ex = self.ray.exceptions
        try:
            record = _unpack(self.ray.get(ref), self.results)
        except ex.TaskCancelledError:
            record = self._failed(cell, "cancelled")
        except ex.RayTaskError as exc:  # the task body raised: a harness bug, not a run failure
            record = self._failed(cell, f"the cell's task raised on its node: {exc.cause!r}"[:2000])
        except ex.RayError as exc:  # worker or node died, on the retry too
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            record = self._failed(
                cell,
                f"{type(exc).__name__}: the cell's worker process or node died "
                f"{self.attempts.get(cell.index, 0) or 'before it reported,'} time(s) (retried once): {first}",
            )
        except (ExecutorError, ValueError, tarfile.TarError) as exc:
            record = self._failed(cell, f"the cell's run folder could not be stored: {exc}")
        self.records[cell.index] = record
        self._release(cell)  # its record is stored: another campaign's --resume sees it done
        state: CellState = "done" if record.status == "ok" else "failed"
        self.on_event(
            CellEvent(
                cell,
                state,
                attempt=max(1, self.attempts.get(cell.index, 1)),
                detail=record.error or record.run_id,
            )
        )

    def _failed(self, cell: Cell, reason: str) -> RunRecord:
        return failed_cell_record(
            cell, self.results, reason, self.started[cell.index], self.environment.get(cell.index)
        )

    def _cancel_all(self) -> None:
        """Ctrl-C: cancel every cell; wait a little for their own failed records; then kill."""
        from ray.util.placement_group import remove_placement_group

        for pg in self.reserving.values():
            remove_placement_group(pg)
        self.reserving.clear()
        for ref in self.refs:
            self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + CANCEL_GRACE_S
        try:
            while self.refs and time.monotonic() < deadline:
                ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=0.5)
                self._drain_events()
                for ref in ready:
                    self._collect_cancelled(ref, self.refs.pop(ref))
        except KeyboardInterrupt:  # a second Ctrl-C: no more grace
            pass
        for ref, cell in list(self.refs.items()):
            self.ray.cancel(ref, force=True)
            if cell.index in self.attempts:
                self.records[cell.index] = self._failed(
                    cell, "interrupted on the driver (Ctrl-C): cell killed"
                )
        self.refs.clear()

    def _collect_cancelled(self, ref: Any, cell: Cell) -> None:
        if cell.index not in self.attempts:
            return  # never started: no record, as with the local executor
        try:
            self.records[cell.index] = _unpack(self.ray.get(ref), self.results)
        except Exception:  # noqa: BLE001 - the cancelled task's record is inside the task
            self.records[cell.index] = self._failed(
                cell, "interrupted on the driver (Ctrl-C): cell cancelled"
            )
        self.on_event(CellEvent(cell, "failed", detail="interrupted"))
