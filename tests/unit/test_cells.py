"""Cells and fingerprints, `harness plan --json`, `--cell N` and `--resume` (no engine needed).

Runs that really execute here use hub presets with the Hub unreachable: `execute()` then ends
each cell at once with a failed record (the real runner, no fake), which is all that selecting
and resuming cells needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.api import run_campaign
from harness.cli import main
from harness.planning.cells import (
    cell_resources,
    fingerprint,
    fingerprint_inputs,
    pending,
    plan_cells,
    select_cell,
)
from harness.planning.plan import plan_runs
from harness.record.run_record import RunRecord
from harness.spec.suite import SuiteError, load_suite
from harness.storage.store import load_records, runs_dir, write_record
from tests.factories import make_record

SUITE = """\
name: camp
description: two hub models, one scenario
models: [mistral-7b, phi-2]
seed: 3
accuracy:
  tasks: [{name: harness_capitals, limit: 4}]
performance:
  scenarios:
    - {name: c1, input_tokens: 16, output_tokens: 4, num_requests: 2, concurrency: 1}
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    p = tmp_path / "camp.yaml"
    p.write_text(SUITE)
    return p


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _variant(tmp_path: Path, text: str, name: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def test_fingerprint_names_what_is_measured_and_nothing_else(suite_file: Path, tmp_path: Path) -> None:
    base = {c.plan.model.name: c.fingerprint for c in plan_cells(load_suite(suite_file))}
    assert len(set(base.values())) == 2 and all(len(f) == 16 for f in base.values())
    # Stable: planning again (another process, another executor) gives the same names.
    assert base == {c.plan.model.name: c.fingerprint for c in plan_cells(load_suite(suite_file))}

    # Not measured: the model list, the description, gates and where cells may run.
    same = SUITE.replace("models: [mistral-7b, phi-2]", "models: [phi-2, mistral-7b, qwen2.5-7b]")
    same = (
        same.replace("one scenario", "edited") + "gates: [{metric: harness_capitals, max_abs_change: 0.1}]\n"
    )
    same += "resources: {accelerator_type: H100}\n"
    cells = plan_cells(load_suite(_variant(tmp_path, same, "same")))
    assert {c.plan.model.name: c.fingerprint for c in cells if c.plan.model.name in base} == base

    # Measured: the workload, the seed, the engine arguments, the variant.
    for changed in (
        SUITE.replace("num_requests: 2", "num_requests: 3"),
        SUITE.replace("seed: 3", "seed: 4"),
        SUITE.replace("limit: 4", "limit: 5"),
        SUITE + "engine: {max_model_len: 1024}\n",
    ):
        other = plan_cells(load_suite(_variant(tmp_path, changed, "changed")))
        assert not set(c.fingerprint for c in other) & set(base.values()), changed
    plan = plan_runs(load_suite(suite_file))[0]
    assert fingerprint(plan, variant="awq") != fingerprint(plan)
    assert fingerprint_inputs(plan)["variant"] is None
    # A default written out explicitly is the same workload as the default left out.
    explicit = SUITE.replace("concurrency: 1}", "concurrency: 1, warmup_requests: 1}")
    cells = plan_cells(load_suite(_variant(tmp_path, explicit, "explicit")))
    assert {c.plan.model.name: c.fingerprint for c in cells} == base


def test_fingerprint_of_a_local_checkpoint_follows_its_files_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.model import checkpoints

    def no_reading(path: Path) -> str:
        raise AssertionError(f"planning read the weights of {path}")

    monkeypatch.setattr(checkpoints, "checksum_dir", no_reading)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"model_type": "llama"}')
    (ckpt / "model.safetensors").write_bytes(b"weights-1")
    suite = load_suite(_variant(tmp_path, SUITE, "s"))
    first = plan_cells(suite, [str(ckpt)])[0]
    assert first.inputs["model"]["files_sha256"]
    (ckpt / "model.safetensors").write_bytes(b"weights-22")  # rewritten: new size and time
    assert plan_cells(suite, [str(ckpt)])[0].fingerprint != first.fingerprint


def test_a_local_checkpoint_is_hashed_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.model import checkpoints

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"model_type": "llama"}')
    (ckpt / "model.safetensors").write_bytes(b"weights-1")
    calls: list[Path] = []
    real = checkpoints.checksum_dir
    monkeypatch.setattr(checkpoints, "checksum_dir", lambda p: calls.append(p) or real(p))
    checkpoints._checksum_cached.cache_clear()
    first = checkpoints.checkpoint_checksum(ckpt)
    assert checkpoints.checkpoint_checksum(ckpt) == first and len(calls) == 1
    assert first == real(ckpt)


def test_resources_follow_parallelism_and_the_suite(tmp_path: Path) -> None:
    text = SUITE.replace("models: [mistral-7b, phi-2]", "models: [mixtral-8x7b]")
    text += "resources: {accelerator_type: H100, num_cpus: 4, memory_gib: 8}\n"
    # Parallel sizes are typed engine fields (a --pipeline-parallel-size in extra_args is refused).
    text += "engine: {pipeline_parallel_size: 2, extra_args: [--distributed-executor-backend=ray]}\n"
    [cell] = plan_cells(load_suite(_variant(tmp_path, text, "big")))
    r = cell.resources
    assert (r.tensor_parallel_size, r.pipeline_parallel_size, r.num_gpus) == (2, 2, 4)
    assert r.accelerator_type == "H100" and r.num_cpus == 4 and r.memory_bytes == 8 * 2**30
    assert r.distributed_executor_backend == "ray" and r.multi_node
    assert not cell_resources(plan_runs(load_suite(_variant(tmp_path, SUITE, "s")))[0]).multi_node


def test_suite_resources_reject_unknown_keys_with_the_line(tmp_path: Path) -> None:
    bad = _variant(tmp_path, SUITE + "resources:\n  acelerator_type: H100\n", "bad")
    with pytest.raises(SuiteError, match=r"bad.yaml:11: resources.acelerator_type: unknown field"):
        load_suite(bad)


def test_plan_json_lists_cells_with_fingerprints(
    suite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(suite_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cells = plan_cells(load_suite(suite_file))
    assert out["suite"] == "camp" and out["suite_sha256"] == load_suite(suite_file).sha256
    assert [(c["index"], c["model"], c["fingerprint"]) for c in out["cells"]] == [
        (c.index, c.plan.model.name, c.fingerprint) for c in cells
    ]
    first = out["cells"][0]
    assert first["variant"] is None and first["scenarios"] == ["c1"]
    assert first["resources"]["num_gpus"] == 1 and "--dtype" in first["engine_args"]
    assert first["fingerprint_inputs"]["model"] == {
        "preset": "mistral-7b",
        "source": "hub",
        "hub_id": "mistralai/Mistral-7B-v0.1",
        "revision": None,
    }
    # The human-readable plan names the same cells.
    assert main(["plan", str(suite_file)]) == 0
    text = capsys.readouterr().out
    assert f"cell:    1 (fingerprint {cells[1].fingerprint})" in text


def test_select_cell_by_index_or_fingerprint(suite_file: Path) -> None:
    cells = plan_cells(load_suite(suite_file))
    assert select_cell(cells, "1") is cells[1]
    assert select_cell(cells, cells[0].fingerprint[:6].upper()) is cells[0]
    with pytest.raises(IndexError, match=r"2 cell\(s\), numbered 0..1"):
        select_cell(cells, "2")
    with pytest.raises(IndexError, match="matches no cell"):
        select_cell(cells, "zzzz")


def test_run_one_cell_writes_exactly_its_record(
    suite_file: Path, tmp_path: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    cells = plan_cells(load_suite(suite_file))
    rc = main(["run", str(suite_file), "--cell", "1", "--results", str(results), "--no-progress"])
    assert rc == 1  # the cell failed (no Hub here), and said so
    [rec] = load_records(results).records
    assert rec.model.preset == "phi-2" and rec.fingerprint == cells[1].fingerprint
    assert rec.status == "failed" and rec.error and "cannot be fetched" in rec.error
    assert main(["run", str(suite_file), "--cell", "7", "--results", str(results)]) == 2
    assert "numbered 0..1" in capsys.readouterr().err


def _ok(cell_fingerprint: str, run_id: str) -> RunRecord:
    return make_record(run_id=run_id).model_copy(update={"fingerprint": cell_fingerprint})


def test_resume_runs_nothing_when_done_and_exactly_the_missing_cell(
    suite_file: Path, tmp_path: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    cells = plan_cells(load_suite(suite_file))
    for i, c in enumerate(cells):  # a finished campaign: an ok record per cell
        write_record(runs_dir(results) / f"run-{i}", _ok(c.fingerprint, f"run-{i}"))
    # A failed record does not count as done, an ok one of another fingerprint neither.
    assert pending(cells, [_ok("0" * 16, "x")])[0] == cells

    rc = main(["run", str(suite_file), "--resume", "--results", str(results), "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "nothing to run: all 2 cell(s) already have an ok record" in captured.out
    assert captured.err.count("skipped") == 2
    assert len(load_records(results).records) == 2

    # Delete one cell's record: resume runs exactly that cell.
    (runs_dir(results) / "run-1" / "record.json").unlink()
    campaign = run_campaign(suite_file, results=results, resume=True)
    assert [c.index for c in campaign.skipped] == [0]
    [rec] = campaign.records
    assert rec.fingerprint == cells[1].fingerprint and rec.model.preset == "phi-2"
    # It failed (no Hub), so a further resume tries it again, and only it.
    again = run_campaign(suite_file, results=results, resume=True)
    assert [r.fingerprint for r in again.records] == [cells[1].fingerprint]


def test_executor_options_fail_clearly(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "run",
            str(suite_file),
            "--executor",
            "ray",
            "--endpoint",
            "http://127.0.0.1:9",
            "--results",
            str(tmp_path),
        ]
    )
    assert rc == 2 and "use --executor local" in capsys.readouterr().err
    assert not runs_dir(tmp_path).exists()


def test_a_pinned_revision_is_a_typed_field_in_the_command_and_the_fingerprint(tmp_path: Path) -> None:
    from harness.model.types import EngineArgs

    with pytest.raises(ValueError, match="engine.revision"):
        EngineArgs(extra_args=("--revision", "abc"))
    pinned = (
        SUITE.replace("models: [mistral-7b, phi-2]", "models: [mistral-7b]") + "engine: {revision: abc123}\n"
    )
    [cell] = plan_cells(load_suite(_variant(tmp_path, pinned, "pinned")))
    assert cell.plan.engine.revision == "abc123"
    assert cell.plan.engine.as_cli()[-2:] == ["--revision", "abc123"]
    assert cell.inputs["model"]["revision"] == "abc123"
