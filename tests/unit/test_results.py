"""Results as data (load_runs, load_tasks, export read back in DuckDB) and `harness runs/show/compare`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import harness
from harness.analysis.compare import compare_records
from harness.analysis.tables import RUN_COLUMNS, UnreadableRecordWarning, export_tables, load_runs, load_tasks
from harness.cli import main
from harness.record.run_record import SCHEMA_VERSION, RunRecord
from tests.factories import generate_results, make_record, make_scenario, write_run

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunRecord]]:
    """30 runs of 12 models, two suites, CPU and GPUs, one failed; per-request tables written."""
    path = tmp_path_factory.mktemp("results")
    records = generate_results(path, 30, failed_every=25)
    return path, records


def test_load_runs_has_one_row_per_run_and_scenario(results: tuple[Path, list[RunRecord]]) -> None:
    path, records = results
    runs = harness.load_runs(path)
    assert len(runs) == sum(max(1, len(r.scenarios)) for r in records)
    assert list(runs.columns[: len(RUN_COLUMNS) + 1]) == [*RUN_COLUMNS, "scenario"]
    for rec in records:
        rows = runs[runs.run_id == rec.run_id]
        if not rec.scenarios:  # the failed run keeps one row, without a scenario
            assert rows.status.tolist() == ["failed"] and rows.scenario.isna().all()
            assert rows.error.iloc[0] == rec.error
            continue
        assert rows.scenario.tolist() == [s.name for s in rec.scenarios]
        for s in rec.scenarios:
            row = rows[rows.scenario == s.name].iloc[0]
            assert row.output_throughput == pytest.approx(s.output_throughput)
            assert row.p99_ttft_ms == pytest.approx(s.p99_ttft_ms)
            assert (
                row.concurrency == s.settings.load.concurrency
                and row.input_tokens == s.settings.load.input_tokens
            )
            assert row["model"] == rec.model.preset and row.suite == rec.suite.name
            gpu_energy = s.resources.gpu.energy_j if s.resources and s.resources.gpu else None
            assert (
                pd.isna(row["resources.gpu.energy_j"])
                if gpu_energy is None
                else row["resources.gpu.energy_j"] == pytest.approx(gpu_energy)
            )
    assert runs.variant.isna().all()
    assert set(runs.hardware) == {
        "CPU: AMD EPYC 7B13 (2 cores)",
        "1× NVIDIA H100 80GB HBM3",
        "1× NVIDIA A10G",
    }
    assert str(runs.started_at.dtype).startswith("datetime64") and runs.started_at.dt.tz is not None
    # Columns follow the models: CPU rows have the GPU columns too, empty.
    cpu = runs[runs.hardware.str.startswith("CPU") & runs.scenario.notna()]
    assert cpu["resources.gpu.energy_j"].isna().all() and "energy.steady_state.energy_j" in runs.columns


def test_load_tasks_has_one_row_per_run_and_task(results: tuple[Path, list[RunRecord]]) -> None:
    path, records = results
    tasks = harness.load_tasks(path)
    assert len(tasks) == sum(len(r.tasks) for r in records)
    rec = records[-1]
    rows = tasks[tasks.run_id == rec.run_id].set_index("task")
    for t in rec.tasks:
        assert rows.loc[t.name, "value"] == pytest.approx(t.value)
        assert rows.loc[t.name, "stderr"] == pytest.approx(t.stderr)
        assert rows.loc[t.name, "metric"] == t.metric
        for key, value in t.metrics.items():
            assert rows.loc[t.name, f"metrics.{key}"] == pytest.approx(value)


def test_filters_and_unreadable_records(tmp_path: Path) -> None:
    write_run(tmp_path, make_record("smollm2-135m"), requests=False)
    write_run(
        tmp_path, make_record("tiny-llama", status="failed", error="boom", scenarios={}), requests=False
    )
    v1 = tmp_path / "runs" / "old-v1"
    v1.mkdir()
    shutil.copy(DATA / "record_v1_cpu.json", v1 / "record.json")
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "record.json").write_text("{")
    with pytest.warns(UnreadableRecordWarning, match="broken/record.json"):
        runs = load_runs(tmp_path)
    assert set(runs.model) == {"smollm2-135m", "tiny-llama"}  # the v1 record too, migrated
    assert sorted(runs.schema_version.unique()) == [SCHEMA_VERSION]
    with pytest.warns(UnreadableRecordWarning):
        failed = load_runs(tmp_path, status="failed")
    assert failed.model.tolist() == ["tiny-llama"]
    with pytest.warns(UnreadableRecordWarning):
        assert set(load_tasks(tmp_path, model="smollm2-135m").run_id) == {make_record("smollm2-135m").run_id}


def test_an_empty_results_folder_gives_empty_tables(tmp_path: Path) -> None:
    runs = load_runs(tmp_path)
    assert runs.empty and "scenario" in runs.columns and "model" in runs.columns
    assert load_tasks(tmp_path).empty


def test_import_harness_stays_free_of_pandas() -> None:
    code = "import sys, harness; assert 'pandas' not in sys.modules; print(callable(harness.load_runs))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_export_reads_back_in_duckdb(results: tuple[Path, list[RunRecord]], tmp_path: Path) -> None:
    path, records = results
    assert main(["export", "--results", str(path), "--format", "parquet", "--out", str(tmp_path / "pq")]) == 0
    runs = load_runs(path)
    con = duckdb.connect()
    pq = (tmp_path / "pq" / "runs.parquet").as_posix()
    assert con.execute(f"select count(*) from '{pq}'").fetchone() == (len(runs),)
    # The README's one-liner: mean output throughput per model and scenario.
    got = con.execute(
        f"select model, scenario, avg(output_throughput) from '{pq}' where status = 'ok' group by all order by all"
    ).fetchall()
    want = runs[runs.status == "ok"].groupby(["model", "scenario"]).output_throughput.mean()
    assert len(got) == len(want)
    for model, scenario, value in got:
        assert value == pytest.approx(want[(model, scenario)])
    energy = con.execute(f"select max(\"resources.gpu.energy_j\") from '{pq}'").fetchone()
    assert energy is not None and energy[0] == pytest.approx(runs["resources.gpu.energy_j"].max())
    tasks_pq = (tmp_path / "pq" / "tasks.parquet").as_posix()
    n_tasks = con.execute(f"select count(*) from '{tasks_pq}'").fetchone()
    assert n_tasks == (sum(len(r.tasks) for r in records),)
    # CSV too, and the per-request tables the runs wrote, straight from the run folders.
    export_tables(path, tmp_path / "csv", "csv")
    csv = (tmp_path / "csv" / "runs.csv").as_posix()
    assert con.execute(f"select count(*) from read_csv_auto('{csv}')").fetchone() == (len(runs),)
    requests = (path / "runs").as_posix() + "/*/requests/*.parquet"
    n_requests = con.execute(f"select count(*) from read_parquet('{requests}', filename = true)").fetchone()
    assert n_requests == (sum(s.completed + s.failed for r in records for s in r.scenarios),)


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parquet or csv"):
        export_tables(tmp_path, tmp_path / "out", "xlsx")  # type: ignore[arg-type]


# --- harness runs / show / compare ------------------------------------------------------------------


def test_runs_lists_and_filters(
    results: tuple[Path, list[RunRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, records = results
    assert main(["runs", "--results", str(path), "--status", "failed"]) == 0
    out = capsys.readouterr().out
    failed = [r for r in records if r.status == "failed"]
    assert failed and f"{len(failed)} run(s)" in out
    assert all(r.run_id in out for r in failed)
    assert main(["runs", "--results", str(path), "--model", "mistral-7b", "--suite", "standard"]) == 0
    out = capsys.readouterr().out
    want = [r for r in records if r.model.preset == "mistral-7b" and r.suite.name == "standard"]
    assert f"{len(want)} run(s)" in out and all(r.run_id in out for r in want)


def test_show_prints_provenance_and_figures(
    results: tuple[Path, list[RunRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, records = results
    rec = records[0]
    assert main(["show", rec.run_id[:18], "--results", str(path)]) == 0
    out = capsys.readouterr().out
    for text in (rec.run_id, "smollm2-135m", "CPU: AMD EPYC 7B13", "harness_capitals", "c1-128-32", "schema"):
        assert text in out
    assert main(["show", "no-such-run", "--results", str(path)]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_compare_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_record(
        "smollm2-135m",
        accuracy={"harness_capitals": (0.50, 0.01)},
        scenarios={"c1": {"output_throughput": 100.0, "median_ttft_ms": 40.0}},
    )
    b = make_record(
        "smollm2-135m",
        run_id="run-b",
        accuracy={"harness_capitals": (0.60, 0.01), "harness_opposites": 0.4},
        scenarios={"c1": {"output_throughput": 120.0, "median_ttft_ms": 50.0}},
    )
    for rec in (a, b):
        write_run(tmp_path, rec, requests=False)
    assert main(["compare", a.run_id, "run-b", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "+20.0 (+20.0%)" in out  # output tok/s 100 -> 120
    assert "+0.100 ±0.028" in out  # accuracy delta with twice the combined standard error
    assert "harness_opposites" in out and "—" in out  # only in B: missing, not zero
    assert main(["compare", a.run_id, "--results", str(tmp_path)]) == 2


def test_compare_records_rows() -> None:
    a = make_record(
        "m", accuracy={"t": (0.5, 0.01)}, scenarios={"c1": make_scenario("c1", output_throughput=100.0)}
    )
    b = make_record(
        "m",
        run_id="b",
        hardware="h100",
        accuracy={"t": (0.52, 0.01)},
        scenarios={"c1": make_scenario("c1", output_throughput=80.0, median_ttft_ms=30.0)},
    )
    cmp = compare_records([a, b])
    rows = {(r.name, r.metric): r for r in cmp.rows}
    task = rows[("t", "acc")]
    assert task.delta(1) == pytest.approx(0.02) and task.noise(1) == pytest.approx(0.01 * 2**0.5)
    assert task.better(1) is True
    tput = rows[("c1", "output_throughput")]
    assert tput.rel_delta(1) == pytest.approx(-0.2) and tput.better(1) is False
    ttft = rows[("c1", "median_ttft_ms")]
    assert ttft.better(1) is True  # lower latency is better
    assert ("c1", "energy_per_output_token_j") not in rows  # neither run has scenario energy
    assert "hardware" in cmp.differing_provenance and "suite" not in cmp.differing_provenance
    with pytest.raises(ValueError, match="two"):
        compare_records([a])


def test_record_json_is_tidy_for_json_normalize(tmp_path: Path) -> None:
    """The point of named entries: pandas turns a record's scenarios into a table directly."""
    rec = make_record()
    data = json.loads(rec.model_dump_json())
    table = pd.json_normalize(data, record_path="scenarios", meta=["run_id", ["model", "preset"]])
    assert table.name.tolist() == [s.name for s in rec.scenarios]
    assert {"settings.load.concurrency", "output_throughput", "run_id", "model.preset"} <= set(table.columns)


def test_the_variant_column_names_the_technique(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.record.run_record import VariantInfo

    base = make_record("smollm2-135m", run_id="base")
    fp8 = make_record("smollm2-135m", run_id="fp8").model_copy(
        update={"variant": VariantInfo(name="kv-fp8", baseline="base", is_baseline=False, changes=["kv fp8"])}
    )
    for rec in (base, fp8):
        write_run(tmp_path, rec, requests=False)
    runs = load_runs(tmp_path)
    variants = runs.drop_duplicates("run_id").set_index("run_id").variant  # one row per scenario
    assert pd.isna(variants["base"]) and variants["fp8"] == "kv-fp8"
    assert main(["compare", "base", "fp8", "--results", str(tmp_path)]) == 0
    assert "kv-fp8" in capsys.readouterr().out
