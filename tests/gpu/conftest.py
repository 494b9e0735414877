"""Real-GPU tests: everything in tests/gpu is marked `gpu`, and a machine without one fails loudly.

`make test` runs `pytest -m "not gpu"`, which deselects these tests (their modules import nothing
heavy at collection). `make test-gpu` runs `pytest -m gpu`; on a machine without an NVIDIA GPU
the tests fail with the reason instead of skipping, so a green `make test-gpu` always means the
GPU checks ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: a test here cannot escape the marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session", autouse=True)
def require_nvidia_gpu() -> Iterator[None]:
    from harness.telemetry.nvml import open_gpus

    with open_gpus() as gpus:
        if not gpus:
            pytest.fail(f"`make test-gpu` needs an NVIDIA GPU: {gpus.reason}", pytrace=False)
    yield
