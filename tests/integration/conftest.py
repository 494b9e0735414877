"""Integration fixtures: real vLLM CPU servers with small real checkpoints.

One SmolLM2 server is shared by the whole test session (start-up costs a minute or two
on a CPU); tests that exercise the harness's own engine management start their own,
with ``--enforce-eager`` to halve start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.checkpoints import ensure_checkpoint
from harness.engine.vllm_server import VllmServer
from tests.integration.procs import SHARED_PGIDS


@pytest.fixture(scope="session")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    path = ensure_checkpoint("smollm2-135m")
    log = tmp_path_factory.mktemp("smollm2-server") / "engine.log"
    server = VllmServer(
        str(path),
        "smollm2-135m",
        ["--dtype", "float32", "--max-model-len", "2048", "--enforce-eager"],
        log_path=log,
        startup_timeout_s=900,
        seed=1234,
    )
    try:
        server.start()
        assert server.pid is not None
        SHARED_PGIDS.add(server.pid)
        yield server
    finally:
        server.stop()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"
