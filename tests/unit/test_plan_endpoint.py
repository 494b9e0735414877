"""Typed parallelism, user task folders, and what an external-endpoint run may claim."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.api import run_suite
from harness.engine.base import EngineError
from harness.engine.endpoint import ExternalEndpoint, served_max_model_len
from harness.model.presets import EngineArgs
from harness.planning.plan import describe, plan_runs
from harness.spec.suite import LoadedSuite, SuiteError, load_suite, parse_suite


def _suite(text: str, path: Path | None = None) -> LoadedSuite:
    if path is not None:
        path.write_text(text)
        return load_suite(path)
    return LoadedSuite(spec=parse_suite(text), path=None, sha256=None)


def test_parallel_sizes_are_typed_and_counted() -> None:
    e = EngineArgs(tensor_parallel_size=2, pipeline_parallel_size=3, data_parallel_size=2)
    assert e.gpu_count == 12
    cli = e.as_cli()
    for flag, value in (
        ("--tensor-parallel-size", "2"),
        ("--pipeline-parallel-size", "3"),
        ("--data-parallel-size", "2"),
    ):
        assert cli[cli.index(flag) + 1] == value


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        ("--tensor-parallel-size", "tensor_parallel_size"),
        ("-tp", "tensor_parallel_size"),
        ("--pipeline-parallel-size=2", "pipeline_parallel_size"),
        ("--data_parallel_size", "data_parallel_size"),
        ("-dp", "data_parallel_size"),
    ],
)
def test_parallel_flags_in_extra_args_point_to_the_field(arg: str, field: str) -> None:
    text = f"name: s\nmodels: [tiny-llama]\nengine:\n  extra_args: ['{arg}', '2']\n"
    with pytest.raises(SuiteError, match=rf"<suite>:4: engine\.extra_args: .*set engine\.{field} instead"):
        parse_suite(text)
    with pytest.raises(ValueError, match=f"engine.{field}"):
        EngineArgs(extra_args=(arg, "2"))


def test_suite_parallelism_overrides_the_preset_and_is_planned() -> None:
    suite = _suite("name: s\nengine:\n  tensor_parallel_size: 2\n  data_parallel_size: 2\n")
    [plan] = plan_runs(suite, ["mixtral-8x7b"])
    assert (plan.engine.tensor_parallel_size, plan.engine.data_parallel_size) == (2, 2)
    assert plan.engine.gpu_count == 4
    assert any("gpus:    4 (tp 2 x pp 1 x dp 2)" in line for line in describe(plan))


def test_include_path_is_relative_to_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "my_tasks").mkdir()
    suite = _suite("name: s\naccuracy:\n  include_path: my_tasks\n  tasks: [my_task]\n", tmp_path / "s.yaml")
    [plan] = plan_runs(suite, ["tiny-llama"])
    assert plan.task_include_paths == (str((tmp_path / "my_tasks").resolve()),)
    bad = _suite("name: s\naccuracy:\n  include_path: [nope]\n", tmp_path / "b.yaml")
    with pytest.raises(SuiteError, match=r"accuracy\.include_path\.0: .*nope is not a folder"):
        plan_runs(bad, ["tiny-llama"])


def test_endpoint_gpus_need_an_endpoint() -> None:
    with pytest.raises(ValueError, match="--endpoint-gpus"):
        plan_runs(_suite("name: s\n"), ["tiny-llama"], endpoint_gpus=("GPU-1",))


@pytest.fixture
def fake_models_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-style /v1/models on loopback whose model list a test sets."""
    models: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps({"object": "list", "data": models}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", models
    finally:
        server.shutdown()


def test_endpoint_must_serve_the_model_asked_for(
    fake_models_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, models = fake_models_server
    models.append({"id": "other/model", "max_model_len": 4096})
    ep = ExternalEndpoint(url, accepted_names=("mistral-7b", "mistralai/Mistral-7B-v0.1"), timeout_s=5)
    with pytest.raises(
        EngineError, match=r"serves 'other/model', not the model asked for with --model: 'mistral-7b'"
    ):
        ep.start()
    models.append({"id": "mistralai/Mistral-7B-v0.1", "max_model_len": 8192})
    ep.start()
    assert ep.served_name == "mistralai/Mistral-7B-v0.1"
    assert served_max_model_len(url, ep.served_name) == 8192
    assert served_max_model_len(url, "missing") is None


def test_endpoint_record_claims_no_checksum_and_no_gpu_figures(
    fake_models_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, models = fake_models_server
    models.append({"id": "someone-else"})
    [rec] = run_suite(_suite("name: s\n"), ["mistral-7b"], results=tmp_path, endpoint=url)
    assert rec.status == "failed"
    assert rec.error is not None and "'someone-else'" in rec.error and "'mistral-7b'" in rec.error
    assert rec.model.checksum_sha256 is None
    assert rec.model.checksum is not None and "unverified" in rec.model.checksum.reason
    assert rec.resources.energy is not None and rec.resources.energy.reason == "external endpoint"


def test_telemetry_meters_the_engines_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run import runner
    from harness.telemetry import session

    calls: list[tuple[dict[str, str] | None, int | None]] = []

    def meter(env: Any = None, max_devices: int | None = None) -> Any:
        calls.append((dict(env) if env is not None else None, max_devices))
        return session.NullGpuMeter("fake")

    monkeypatch.setattr(session, "default_gpu_meter", meter)
    suite = _suite("name: s\nengine:\n  tensor_parallel_size: 2\n  pipeline_parallel_size: 2\n")
    [managed] = plan_runs(suite, ["tiny-llama"])
    runner._telemetry_session(managed)
    assert calls[-1][1] == 4
    [ext] = plan_runs(suite, ["tiny-llama"], endpoint="http://x", endpoint_gpus=("GPU-a", "GPU-b"))
    runner._telemetry_session(ext)
    assert calls[-1] == ({"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}, 2)
    [bare] = plan_runs(suite, ["tiny-llama"], endpoint="http://x")
    n = len(calls)
    t = runner._telemetry_session(bare)
    assert len(calls) == n  # no GPU is looked for
    assert t.gpu.environment_fields()["gpu_reason"] == "external endpoint"
