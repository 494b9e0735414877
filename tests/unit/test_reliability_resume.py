"""`harness run --resume` twice at once runs each cell once (issue 28, item 8): cells are claimed
with an O_EXCL claim file before they run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.executors import claims, local
from harness.executors.base import CellEvent
from harness.executors.claims import claim_path, claimed
from harness.executors.local import LocalExecutor
from harness.planning.cells import plan_cells
from harness.planning.plan import RunPlan
from harness.record.run_record import RunRecord
from harness.spec.suite import LoadedSuite, parse_suite
from harness.storage.store import runs_dir, write_record
from tests.factories import make_record

SUITE = """\
name: resume
models: [tiny-llama, tiny-qwen, tiny-phi]
performance:
  scenarios:
    - {name: c1, num_requests: 2, concurrency: 1, input_tokens: 8, output_tokens: 8}
"""


def _cells():  # type: ignore[no-untyped-def]
    return plan_cells(LoadedSuite(spec=parse_suite(SUITE), path=None, sha256=None), None)


def test_two_concurrent_resumed_campaigns_run_each_cell_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def fake_execute(plan: RunPlan, results: Path, hooks: object, fingerprint: str) -> RunRecord:
        with lock:
            ran.append(fingerprint)
        time.sleep(0.3)  # long enough for the other campaign to reach the same cell
        rec = make_record(run_id=f"{fingerprint}-{threading.get_ident()}").model_copy(
            update={"fingerprint": fingerprint}
        )
        write_record(runs_dir(results) / rec.run_id, rec)
        return rec

    monkeypatch.setattr(local, "execute", fake_execute)
    cells = _cells()
    events: list[CellEvent] = []
    threads = [
        threading.Thread(target=LocalExecutor(resume=True).run, args=(cells, tmp_path, events.append))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran) == sorted(c.fingerprint for c in cells)  # before: every cell twice
    assert sum(e.state == "skipped" for e in events) == len(cells)
    assert not list((tmp_path / claims.CLAIMS_DIR).iterdir())  # claims released


def test_a_claim_of_a_live_process_is_respected_and_a_dead_ones_taken_over(tmp_path: Path) -> None:
    path = claim_path(tmp_path, "abc")
    path.parent.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": live.pid}))
        with claimed(tmp_path, "abc") as c:
            assert not c.ours and str(live.pid) in c.holder
    finally:
        live.kill()
        live.wait()
    with claimed(tmp_path, "abc") as c:  # the holder is gone (SIGKILLed): its claim is stale
        assert c.ours
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_a_hostile_fingerprint_claims_inside_the_results_folder(tmp_path: Path) -> None:
    with claimed(tmp_path / "r", "../../x") as c:
        assert c.ours
        assert [p.parent for p in (tmp_path / "r" / claims.CLAIMS_DIR).iterdir()] == [
            tmp_path / "r" / claims.CLAIMS_DIR
        ]
    assert sorted(os.listdir(tmp_path)) == ["r"]
