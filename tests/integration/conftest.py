"""Integration fixtures: the harness end to end against an engine process.

Two engines, for two kinds of question (tests/README.md says which to pick):

* ``fake_engine``: the harness starts ``tests.fakeserver`` exactly as it starts vLLM (same
  command line, process group, PDEATHSIG, health wait, tree stop), in well under a second.
  For everything that is the harness's behaviour: records, failures, signals, orphans, the gate.
* ``smollm2_server``: one real vLLM CPU server with SmolLM2-135M shared by the whole session
  (start-up costs a minute or two). For what only the real engine can show: real accuracy,
  vLLM's actual responses, log lines and metrics. Tests using it are marked ``slow``.

Every test also gets a process tag (see procs.py); a test that leaves a tagged process alive
fails at teardown, and the leftovers are killed so they cannot disturb the next test.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.engine.vllm_server import ENTRYPOINT_ENV, VllmServer
from harness.model.checkpoints import ensure_checkpoint
from tests.fakeserver import ENV_ARGS as FAKE_ARGS_ENV
from tests.integration.procs import TAG_ENV, describe, kill_all, leftovers

ROOT = Path(__file__).resolve().parents[2]

FakeEngine = Callable[..., None]


@pytest.fixture(autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(TAG_ENV, f"{request.node.name[:60]}-{uuid.uuid4().hex[:8]}")
    yield
    alive = leftovers(timeout_s=10)
    if alive:
        names = describe(alive)
        kill_all(alive)
        pytest.fail(f"processes left behind by the test: {names}")


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """The harness's engine becomes tests.fakeserver (in this process and in subprocesses it
    starts); call the fixture's value with fake-server options (``--fake-token-delay-ms``, ...)."""
    monkeypatch.setenv(ENTRYPOINT_ENV, "tests.fakeserver")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
    monkeypatch.delenv(FAKE_ARGS_ENV, raising=False)

    def configure(*args: str) -> None:
        monkeypatch.setenv(FAKE_ARGS_ENV, shlex.join(args))

    return configure


class SharedServer:
    """A vLLM server owned by a thread of its own for the whole session.

    It starts in the background as soon as collection shows that a selected test needs it, so
    its minute or two of start-up overlaps the tests that run before. The thread lives until the
    session ends because Linux's PDEATHSIG, which the harness sets on every engine, fires when
    the *thread* that spawned the child exits, not only the process.
    """

    def __init__(self, server: VllmServer) -> None:
        self.server = server
        self.error: BaseException | None = None
        self._ready, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._own, name=f"server-{server.served_name}", daemon=True)
        self._thread.start()

    def _own(self) -> None:
        try:
            self.server.start()
        except BaseException as exc:  # handed to the fixture, which fails the tests that need it
            self.error = exc
        self._ready.set()
        self._done.wait()
        self.server.stop()

    def get(self, timeout_s: float) -> VllmServer:
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"shared server not up after {timeout_s:.0f} s")
        if self.error is not None:
            raise self.error
        return self.server

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=60)


_SHARED: dict[str, SharedServer] = {}


def _start_smollm2() -> SharedServer:
    if "smollm2" not in _SHARED:
        log = Path(tempfile.mkdtemp(prefix="smollm2-server-")) / "engine.log"
        server = VllmServer(
            str(ensure_checkpoint("smollm2-135m")),
            "smollm2-135m",
            ["--dtype", "float32", "--max-model-len", "2048", "--enforce-eager"],
            log_path=log,
            startup_timeout_s=900,
            seed=1234,
        )
        _SHARED["smollm2"] = SharedServer(server)
    return _SHARED["smollm2"]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("smollm2_server" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_smollm2()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for shared in _SHARED.values():
        shared.close()


@pytest.fixture(scope="session")
def smollm2_server() -> VllmServer:
    """The real vLLM CPU server with SmolLM2-135M shared by every test of the session."""
    return _start_smollm2().get(timeout_s=900)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"
