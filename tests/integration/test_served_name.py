"""`--served-model-name`: an endpoint started with `vllm serve ... --served-model-name foo` (the
usual way) is measured under that name, and the record says which name it used."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.api import run_suite

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SUITE = """\
name: served-name
models: [smollm2-135m]
performance:
  scenarios:
    - {name: c1, input_tokens: 16, output_tokens: 4, num_requests: 3, concurrency: 1, warmup_requests: 0}
"""


@pytest.fixture
def foo_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeserver", "--model", "some/checkpoint", "--served-model-name", "foo",
         "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    if json.load(r)["data"]:
                        break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_endpoint_under_another_name(foo_server: str, tmp_path: Path) -> None:
    suite = tmp_path / "served-name.yaml"
    suite.write_text(SUITE)
    [refused] = run_suite(suite, results=tmp_path / "r1", endpoint=foo_server)
    assert refused.status == "failed" and refused.error is not None and "'foo'" in refused.error
    [rec] = run_suite(suite, results=tmp_path / "r2", endpoint=foo_server, served_model_name="foo")
    assert rec.status == "ok", rec.error
    assert rec.model.served_name == "foo" and rec.performance["c1"].completed == 3
    on_disk = json.loads(next((tmp_path / "r2" / "runs").glob("*/record.json")).read_text())
    assert on_disk["model"]["served_name"] == "foo"
