"""The Ray executor's driver loop without a cluster: a stand-in for Ray's task API runs each
cell body in a thread (Ray's own exception types), so the driver's failure records and its
`--resume` claims are exercised exactly as with a cluster (issues 20 and 28)."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
import ray.exceptions

from harness.executors import claims
from harness.executors.base import CellEvent, failed_cell_record
from harness.executors.ray_cluster import _Campaign, _pack
from harness.planning.cells import Cell, plan_cells
from harness.run.runner import execute
from harness.spec.suite import LoadedSuite, parse_suite
from harness.storage.store import load_records, run_dir_of, write_record
from tests.factories import make_record

VARIANTS = """\
name: vsuite
models: [mistral-7b]
variants:
  - {name: base}
  - {name: nocache, enable_prefix_caching: false}
"""

MODELS = """\
name: resume
models: [tiny-llama, tiny-qwen, tiny-phi]
performance:
  scenarios:
    - {name: c1, num_requests: 2, concurrency: 1, input_tokens: 8, output_tokens: 8}
"""

Body = Callable[[Cell], dict[str, Any]]


def _cells(text: str) -> list[Cell]:
    return plan_cells(LoadedSuite(spec=parse_suite(text), path=None, sha256=None), None)


class _NoEvents:
    def get_nowait(self) -> Any:
        raise Empty


class _Remote:
    def __init__(self, fake: FakeRay) -> None:
        self.fake = fake

    def options(self, **opts: Any) -> _Remote:
        return self

    def remote(self, cell: Cell, events: Any, version: str, env: dict[str, str]) -> futures.Future[Any]:
        return self.fake.pool.submit(self.fake.body, cell)


class FakeRay:
    """What the driver calls of Ray: tasks are threads here, their refs futures."""

    exceptions = ray.exceptions

    def __init__(self, body: Body) -> None:
        self.body = body
        self.pool = futures.ThreadPoolExecutor(4)

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 4.0}

    def remote(self, fn: Any) -> _Remote:
        return _Remote(self)

    def wait(self, refs: list[Any], num_returns: int = 1, timeout: float | None = None) -> tuple[list, list]:
        done, rest = futures.wait(refs, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        ready = list(done)[:num_returns]
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: futures.Future[Any]) -> Any:
        return ref.result()

    def cancel(self, ref: futures.Future[Any], force: bool = False) -> None:
        ref.cancel()


def _campaign(
    body: Body, cells: list[Cell], results: Path, events: list[CellEvent], resume: bool
) -> _Campaign:
    return _Campaign(FakeRay(body), cells, results, events.append, resume=resume, events=_NoEvents())


def _tag_shape(run_id: str) -> str:
    """A run id without its time and its random suffix: the tag both writers must agree on."""
    m = re.fullmatch(r"\d{8}T\d{6}Z-(.+)-[0-9a-f]{4}", run_id)
    assert m, run_id
    return m.group(1)


def test_a_failed_ray_cell_of_a_variant_keeps_its_variant_and_run_id_tag(tmp_path: Path) -> None:
    def crashed(cell: Cell) -> dict[str, Any]:
        raise ray.exceptions.WorkerCrashedError()

    cells = _cells(VARIANTS)
    events: list[CellEvent] = []
    records = _campaign(crashed, cells, tmp_path, events, resume=False).run()
    assert [r.status for r in records] == ["failed", "failed"]
    for cell, rec in zip(cells, records, strict=True):
        assert rec.error and "worker process or node died" in rec.error
        assert rec.variant is not None and rec.variant.name == cell.variant  # before: no variant
        assert _tag_shape(rec.run_id) == f"mistral-7b-{cell.variant}-vsuite"  # before: mistral-7b-vsuite
        assert rec.variant.baseline == "base" and rec.variant.is_baseline == (cell.variant == "base")
        assert rec.fingerprint == cell.fingerprint and rec.suite.name == "vsuite"
    assert {r.run_id for r in load_records(tmp_path).records} == {r.run_id for r in records}
    assert [e.state for e in events].count("failed") == 2


def test_the_runners_and_the_drivers_failed_records_agree_on_a_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same cell failing in the runner (weights unavailable offline) and on the driver."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cell = _cells(VARIANTS)[1]
    ran = execute(cell.plan, tmp_path / "runner", fingerprint=cell.fingerprint)
    assert ran.status == "failed" and ran.error and "cannot be fetched" in ran.error
    started = ran.started_at
    driver = failed_cell_record(
        cell, tmp_path / "driver", "NodeDiedError", started, ran.environment.model_dump()
    )
    assert _tag_shape(driver.run_id) == _tag_shape(ran.run_id) == "mistral-7b-nocache-vsuite"
    assert driver.run_id[:16] == ran.run_id[:16]  # the same start time
    for section in ("suite", "model", "variant", "fingerprint", "status", "environment"):
        assert getattr(driver, section) == getattr(ran, section), section
    assert driver.engine is None and ran.engine is None


def test_two_concurrent_resumed_ray_campaigns_run_each_cell_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    ran: list[str] = []
    lock = threading.Lock()

    def body(cell: Cell) -> dict[str, Any]:  # a cell's task: its record, packed as the worker does
        with lock:
            ran.append(cell.fingerprint)
        time.sleep(0.3)  # long enough for the other campaign to reach the same cell
        scratch = Path(tempfile.mkdtemp(dir=tmp_path))
        rec = make_record(run_id=f"{cell.fingerprint}-{threading.get_ident()}").model_copy(
            update={"fingerprint": cell.fingerprint}
        )
        write_record(run_dir_of(scratch, rec.run_id), rec)
        return {"run_id": rec.run_id, "node": "fake", "tar": _pack(run_dir_of(scratch, rec.run_id))}

    cells = _cells(MODELS)
    events: list[CellEvent] = []
    campaigns = [_campaign(body, cells, results, events, resume=True) for _ in range(2)]
    threads = [threading.Thread(target=c.run) for c in campaigns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran) == sorted(c.fingerprint for c in cells)  # before: every cell twice
    skipped = [e for e in events if e.state == "skipped"]
    assert len(skipped) == len(cells)
    assert all("claimed by another run" in e.detail or "appeared" in e.detail for e in skipped)
    assert sorted(r.fingerprint or "" for r in load_records(results).records) == sorted(ran)
    assert not list((results / claims.CLAIMS_DIR).iterdir())  # every claim given back


def test_a_ray_campaign_skips_a_cell_a_live_run_has_claimed_and_releases_its_own(tmp_path: Path) -> None:
    results = tmp_path / "results"
    cells = _cells(MODELS)

    def body(cell: Cell) -> dict[str, Any]:
        raise ray.exceptions.WorkerCrashedError()

    events: list[CellEvent] = []
    with claims.claimed(results, cells[0].fingerprint) as held:  # another live campaign (this process)
        assert held.ours
        records = _campaign(body, cells, results, events, resume=True).run()
        assert claims.claim_path(results, cells[0].fingerprint).exists()  # theirs stays theirs
    assert [r.fingerprint for r in records] == [c.fingerprint for c in cells[1:]]
    assert [e.cell.index for e in events if e.state == "skipped"] == [0]
    assert not list((results / claims.CLAIMS_DIR).iterdir())  # failed cells' claims released too
    # Without --resume nothing is claimed.
    _campaign(body, cells[:1], tmp_path / "plain", [], resume=False).run()
    assert not (tmp_path / "plain" / claims.CLAIMS_DIR).exists()
