"""Shared fixtures for the unit tests: the fake NVML (``tests.fakenvml``) and a thread-leak check."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.fakenvml import FakeNvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    """A fake pynvml with no GPUs yet (add them with ``add_gpu``); CUDA_VISIBLE_DEVICES unset."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = FakeNvml(monkeypatch)
    yield fake
    # NVML init/shutdown must balance: a set that is not closed holds the library.
    assert fake.inits == fake.lib.nvmlShutdown.call_count, "an NVML GpuSet was not closed"


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fails a test that leaves a harness sampler or poller thread running."""
    yield
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("harness-gpu", "harness-metrics"))]
    assert not alive, f"threads left running: {alive}"
