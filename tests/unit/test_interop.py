"""Imports of other tools' files: round trips against the files' own figures, and bad input.

The fixtures under tests/data/interop were made here by the tools themselves against
tests/fakeserver.py (tests/data/README.md says how); the figures each file states are its
tool's, so a recomputation that matches them follows that tool's definitions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.interop.cli import import_files
from harness.interop.common import ImportFormatError
from harness.interop.definitions import aiperf_figures, figures, guidellm_figures, vllm_figures
from harness.loadgen.client import requests_from_parquet
from harness.loadgen.metrics import RequestTiming
from harness.record.run_record import SCHEMA_VERSION
from harness.storage.store import read_record, runs_dir

DATA = Path(__file__).parents[1] / "data" / "interop"
ROOT = Path(__file__).parents[2]
VLLM = DATA / "vllm_bench_detailed.json"
GUIDELLM = DATA / "guidellm" / "benchmarks.json"
AIPERF = DATA / "aiperf"
LMEVAL = DATA / "lmeval"


def _close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    assert a is not None and b is not None
    return abs(a - b) <= rel * max(abs(a), abs(b))


def _imported(kind: str, path: Path, results: Path, **kw: str) -> tuple[Path, object]:
    [run_dir] = import_files(kind, [path], results, **kw)
    return run_dir, read_record(run_dir)


def _rows(run_dir: Path, rel: str | None) -> list[RequestTiming]:
    assert rel is not None
    return requests_from_parquet(run_dir / rel)


def test_vllm_bench_round_trip_equals_the_files_own_figures(tmp_path: Path) -> None:
    run_dir, rec = _imported("vllm-bench", VLLM, tmp_path)
    src = json.loads(VLLM.read_text())
    [s] = rec.scenarios  # type: ignore[attr-defined]
    # the record's aggregates are recomputed from the stored request table...
    from harness.loadgen.metrics import aggregate

    agg = aggregate(_rows(run_dir, s.requests_path), s.duration)
    keys = [k for k in src if k.endswith("_ms") or k.endswith("_throughput")]
    assert len(keys) >= 19
    for key in keys:
        assert _close(agg[key], src[key]), key
        assert _close(getattr(s, key), src[key]), key
    assert s.completed == src["completed"] and s.total_output_tokens == src["total_output_tokens"]
    # ... and so are the headline figures under vLLM's definitions
    v = vllm_figures(_rows(run_dir, s.requests_path), s.duration)
    for key in ("output_throughput", "mean_ttft_ms", "mean_itl_ms", "mean_tpot_ms"):
        assert _close(v[key], src[key]), key
    assert s.p90_ttft_ms is not None  # percentiles the file did not save are recomputed from rows


def test_an_imported_record_says_where_it_came_from_and_what_it_lacks(tmp_path: Path) -> None:
    import jsonschema

    _, rec = _imported("vllm-bench", VLLM, tmp_path, hardware="1x test GPU")
    src = rec.source  # type: ignore[attr-defined]
    assert src is not None and src.tool == "vllm-bench"
    assert src.sha256 == hashlib.sha256(VLLM.read_bytes()).hexdigest()
    assert "engine.args" in src.unmeasured and "scenarios.energy" in src.unmeasured
    assert "environment" not in src.unmeasured  # hardware was given
    assert rec.engine.args == {}  # type: ignore[attr-defined]
    assert rec.scenarios[0].energy is None  # type: ignore[attr-defined]
    # schema v3: the load generator's CPU is null with the reason, not a 0.0 placeholder
    assert rec.scenarios[0].client_cpu_s is None  # type: ignore[attr-defined]
    assert "does not say" in src.unmeasured["scenarios.client_cpu_s"]
    schema = json.loads((ROOT / "schema" / f"run_record.v{SCHEMA_VERSION}.json").read_text())
    jsonschema.validate(json.loads(rec.model_dump_json()), schema)  # type: ignore[attr-defined]
    _, rec2 = _imported("vllm-bench", VLLM, tmp_path / "b")
    assert "environment" in rec2.source.unmeasured  # type: ignore[attr-defined]


def test_guidellm_round_trip_equals_the_reports_own_figures(tmp_path: Path) -> None:
    run_dir, rec = _imported("guidellm", GUIDELLM, tmp_path)
    [s] = rec.scenarios  # type: ignore[attr-defined]
    own = rec.source.tool_figures[s.name]  # type: ignore[attr-defined]
    mine = guidellm_figures(_rows(run_dir, s.requests_path), s.duration)
    for key in ("output_throughput", "mean_ttft_ms", "mean_itl_ms", "mean_tpot_ms"):
        assert _close(mine[key], own[key]), key
    report = json.loads(GUIDELLM.read_text())["benchmarks"][0]["metrics"]
    assert _close(own["mean_itl_ms"], report["inter_token_latency_ms"]["successful"]["mean"])
    assert s.mean_itl_ms is None  # no per-chunk times in a GuideLLM report: vLLM's pooled ITL is null
    assert rec.source.version == "0.8.1"  # type: ignore[attr-defined]


def test_aiperf_round_trip_equals_the_exports_own_figures(tmp_path: Path) -> None:
    run_dir, rec = _imported("aiperf", AIPERF, tmp_path)
    [s] = rec.scenarios  # type: ignore[attr-defined]
    own = rec.source.tool_figures[s.name]  # type: ignore[attr-defined]
    rows = _rows(run_dir, s.requests_path)
    mine = aiperf_figures(rows, s.duration)
    assert _close(mine["mean_ttft_ms"], own["mean_ttft_ms"])
    assert _close(mine["mean_itl_ms"], own["mean_itl_ms"])
    # AIPerf's throughput window is its profiling phase, which the export states to the microsecond
    # only (start_time, end_time): 1e-6 relative is what the file allows.
    assert _close(mine["output_throughput"], own["output_throughput"], rel=1e-6)
    assert not _close(mine["output_throughput"], aiperf_figures(rows, None)["output_throughput"], rel=1e-3)
    # AIPerf's inter-chunk latency is vLLM's pooled ITL
    assert _close(vllm_figures(rows, s.duration)["mean_itl_ms"], own["mean_inter_chunk_latency_ms"])
    assert rec.source.version == "0.13.0" and rec.source.command.startswith("aiperf profile")  # type: ignore[attr-defined]
    assert len(rec.source.files) == 2  # type: ignore[attr-defined]


def test_lmeval_folder_imports_its_metrics_and_samples(tmp_path: Path) -> None:
    run_dir, rec = _imported("lm-eval", LMEVAL, tmp_path)
    [results_file] = LMEVAL.glob("results_*.json")
    own = json.loads(results_file.read_text())["results"]["harness_capitals"]
    [t] = rec.tasks  # type: ignore[attr-defined]
    assert t.metric == "acc,none" and t.value == own["acc,none"] and t.stderr == own["acc_stderr,none"]
    assert t.metrics["acc_norm,none"] == own["acc_norm,none"] and t.n_samples == 81
    assert (run_dir / t.samples_path).read_bytes() == next(LMEVAL.glob("samples_*.jsonl")).read_bytes()
    assert rec.scenarios == [] and rec.source.version == "0.4.13"  # type: ignore[attr-defined]


def test_the_gate_pairs_an_imported_lmeval_run_with_a_measured_runs_samples(tmp_path: Path) -> None:
    from harness.gate.compare import compare
    from harness.rigor.compare import samples_dir_of

    measured = DATA / "measured_run"
    base = read_record(measured)
    run_dir, cand = _imported("lm-eval", LMEVAL, tmp_path, suite=base.suite.name)
    report = compare(
        base,
        cand,
        allow_mismatch=True,
        samples=(samples_dir_of(measured), samples_dir_of(run_dir)),  # type: ignore[arg-type]
    )
    [acc] = [c for c in report.comparisons if c.metric == "harness_capitals"]
    assert acc.noise_basis is not None and "paired McNemar" in acc.noise_basis, acc
    assert acc.verdict == "pass" and acc.change_abs == 0.0  # same server, same documents, same answers
    assert any(
        n.startswith("method: baseline measured here, candidate imported from lm-eval") for n in report.notes
    )


def test_a_gate_between_imported_and_measured_runs_says_what_differs(tmp_path: Path) -> None:
    from harness.interop.method import method_notes

    _, g = _imported("guidellm", GUIDELLM, tmp_path)
    base = read_record(DATA / "measured_run")
    notes = method_notes(base, g)  # type: ignore[arg-type]
    assert "imported from guidellm 0.8.1" in notes[0]
    assert any("no per-chunk times" in n for n in notes)
    assert method_notes(base, base) == []


def test_load_runs_marks_imports_and_adds_columns_under_each_definition(tmp_path: Path) -> None:
    from harness.analysis.tables import load_runs

    import_files("guidellm", [GUIDELLM], tmp_path)
    import_files("aiperf", [AIPERF], tmp_path)
    frame = load_runs(tmp_path, definitions=("vllm", "guidellm", "aiperf"))
    assert sorted(frame["imported_from"]) == ["aiperf", "guidellm"]
    g = frame[frame["imported_from"] == "guidellm"].iloc[0]
    own = json.loads(GUIDELLM.read_text())["benchmarks"][0]["metrics"]
    assert _close(g["guidellm.mean_tpot_ms"], own["time_per_output_token_ms"]["successful"]["mean"])
    assert _close(g["vllm.mean_tpot_ms"], g["guidellm.mean_itl_ms"])  # both: (last - first) / (n - 1)...
    assert g["vllm.mean_itl_ms"] is None or g["vllm.mean_itl_ms"] != g["vllm.mean_itl_ms"]  # null/NaN


def test_show_definitions_prints_both_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    [run_dir] = import_files("aiperf", [AIPERF], tmp_path)
    assert main(["show", str(run_dir), "--results", str(tmp_path), "--definitions", "aiperf"]) == 0
    out = capsys.readouterr().out
    assert "recomputed (aiperf)" in out and "the file's own" in out and "mean_itl_ms" in out


def _chunked(tokens_per_chunk: int) -> list[RequestTiming]:
    """Two requests whose chunks carry several tokens each, at known times (seconds)."""
    out = []
    for i, (send, n_chunks) in enumerate(((0.0, 4), (0.5, 2))):
        first = send + 0.1
        chunks = [first + 0.02 * k for k in range(n_chunks)]
        out.append(
            RequestTiming(
                index=i,
                send_s=send,
                input_tokens=8,
                first_token_s=first,
                end_s=chunks[-1],
                chunk_s=chunks,
                output_tokens=n_chunks * tokens_per_chunk,
            )
        )
    return out


def test_definitions_differ_as_the_tools_do_when_a_chunk_carries_several_tokens() -> None:
    reqs = _chunked(3)  # 12 and 6 tokens in 4 and 2 chunks, 20 ms apart
    v, g, a = vllm_figures(reqs, 1.0), guidellm_figures(reqs, 1.0), aiperf_figures(reqs, 1.0)
    assert v["mean_itl_ms"] == pytest.approx(20.0)  # pooled chunk gaps: per chunk, not per token
    assert v["mean_tpot_ms"] == pytest.approx((60 / 11 + 20 / 5) / 2)  # per request, plain mean
    assert a["mean_itl_ms"] == pytest.approx(v["mean_tpot_ms"])  # AIPerf's ITL is vLLM's TPOT
    assert g["mean_itl_ms"] == pytest.approx((60 + 20) / (11 + 5))  # weighted by n - 1
    assert g["mean_tpot_ms"] == pytest.approx((160 + 120) / (12 + 6))  # first token included, weighted by n
    assert v["mean_output_tokens_per_chunk"] == pytest.approx(3.0)
    assert v["output_throughput"] == g["output_throughput"] == 18.0
    assert a["mean_ttft_ms"] == v["mean_ttft_ms"] == pytest.approx(100.0)
    assert figures("guidellm", reqs, 1.0) == g


# ---------------------------------------------------------------- bad input


def _no_runs(results: Path) -> bool:
    base = runs_dir(results)
    return not base.exists() or not any(base.iterdir())


def test_a_truncated_file_names_the_file_and_where_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "cut.json"
    bad.write_text(VLLM.read_text()[:3000])
    with pytest.raises(
        ImportFormatError, match=r"cut\.json: line 1 column \d+: expected a complete JSON document"
    ):
        import_files("vllm-bench", [VLLM, bad], tmp_path / "results")  # the good one is not written either
    assert _no_runs(tmp_path / "results")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("duration"), r"duration: expected this field \(missing\)"),
        (lambda d: d.update(duration="soon"), r"duration: expected a finite number, got 'soon'"),
        (lambda d: d["itls"].pop(), r"itls: expected a list of 12 entries, got 11"),
        (
            lambda d: d["latencies"].__setitem__(3, None),
            r"latencies\[3\]: expected a finite number, got None",
        ),
        (lambda d: d["output_lens"].__setitem__(0, -1), r"output_lens\[0\]: expected a count >= 0"),
    ],
)
def test_a_malformed_vllm_file_names_the_field(tmp_path: Path, edit: object, match: str) -> None:
    data = json.loads(VLLM.read_text())
    edit(data)  # type: ignore[operator]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ImportFormatError, match=match):
        import_files("vllm-bench", [bad], tmp_path / "results")
    assert _no_runs(tmp_path / "results")


def test_malformed_guidellm_and_aiperf_files_name_the_field(tmp_path: Path) -> None:
    data = json.loads(GUIDELLM.read_text())
    del data["benchmarks"][0]["requests"]["successful"][2]["info"]["timings"]
    (tmp_path / "g.json").write_text(json.dumps(data))
    with pytest.raises(ImportFormatError, match=r"benchmarks\[0\]\.requests\.successful\[2\]\.info\.timings"):
        import_files("guidellm", [tmp_path / "g.json"], tmp_path / "results")
    folder = tmp_path / "aiperf"
    folder.mkdir()
    (folder / "profile_export_aiperf.json").write_bytes((AIPERF / "profile_export_aiperf.json").read_bytes())
    lines = (AIPERF / "profile_export.jsonl").read_text().splitlines()
    (folder / "profile_export.jsonl").write_text("\n".join([*lines[:5], lines[5][:100]]) + "\n")
    with pytest.raises(
        ImportFormatError, match=r"profile_export\.jsonl: line 6: expected one complete JSON object"
    ):
        import_files("aiperf", [folder], tmp_path / "results")
    (folder / "profile_export.jsonl").unlink()
    with pytest.raises(ImportFormatError, match=r"profile_export\.jsonl: file: expected AIPerf's"):
        import_files("aiperf", [folder], tmp_path / "results")
    assert _no_runs(tmp_path / "results")


def test_the_cli_reports_a_bad_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["import", "lm-eval", str(tmp_path / "empty"), "--results", str(tmp_path / "r")]) == 1
    assert "results_<date>.json" in capsys.readouterr().err
    assert _no_runs(tmp_path / "r")


def test_a_vllm_file_without_detailed_arrays_keeps_its_own_figures(tmp_path: Path) -> None:
    data = json.loads(VLLM.read_text())
    for key in ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times", "errors"):
        data.pop(key)
    (tmp_path / "plain.json").write_text(json.dumps(data))
    _, rec = _imported("vllm-bench", tmp_path / "plain.json", tmp_path / "r")
    [s] = rec.scenarios  # type: ignore[attr-defined]
    assert s.requests_path is None and s.mean_ttft_ms == data["mean_ttft_ms"] and s.p90_ttft_ms is None
    assert "scenarios.requests_path" in rec.source.unmeasured  # type: ignore[attr-defined]


def test_imported_runs_are_marked_on_the_leaderboard_and_in_compare(tmp_path: Path) -> None:
    from harness.analysis.compare import compare_records
    from harness.dashboard.data import engine_label

    _, g = _imported("guidellm", GUIDELLM, tmp_path)
    base = read_record(DATA / "measured_run")
    assert engine_label(g) == "imported (guidellm 0.8.1)"  # type: ignore[arg-type]
    assert not engine_label(base).startswith("imported")
    method = dict(compare_records([base, g]).provenance)["method"]  # type: ignore[list-item]
    assert method[0] == "measured here" and method[1].startswith("imported from guidellm 0.8.1 (")


def test_a_guidellm_yaml_report_reads_like_its_json(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "benchmarks.yaml").write_text(yaml.safe_dump(json.loads(GUIDELLM.read_text())))
    _, rec = _imported("guidellm", tmp_path / "benchmarks.yaml", tmp_path / "r")
    _, ref = _imported("guidellm", GUIDELLM, tmp_path / "j")
    assert rec.scenarios[0].mean_ttft_ms == ref.scenarios[0].mean_ttft_ms  # type: ignore[attr-defined]
    (tmp_path / "cut.yaml").write_text((tmp_path / "benchmarks.yaml").read_text()[:5000] + "\n  - [unclosed")
    with pytest.raises(
        ImportFormatError, match=r"cut\.yaml: line \d+ column \d+: expected a complete YAML document"
    ):
        import_files("guidellm", [tmp_path / "cut.yaml"], tmp_path / "r2")


def test_given_hardware_names_gpus_as_gpus_and_the_rest_as_given(tmp_path: Path) -> None:
    from harness.interop.writer import given_gpus
    from harness.record.hardware import hardware_label

    _, rec = _imported("vllm-bench", VLLM, tmp_path, hardware="1x H100 80GB")
    assert hardware_label(rec.environment) == "1× H100 80GB"  # type: ignore[attr-defined]
    _, rec2 = _imported("vllm-bench", VLLM, tmp_path / "b", hardware="2 x NVIDIA L4")
    assert hardware_label(rec2.environment) == "2× NVIDIA L4"  # type: ignore[attr-defined]
    assert [g.name for g in given_gpus("H200")] == ["H200"]  # known to the roofline table
    assert given_gpus("CPU: AMD EPYC 7B13") == [] and given_gpus("my box") == []
    _, rec3 = _imported("vllm-bench", VLLM, tmp_path / "c", hardware="my box")
    assert hardware_label(rec3.environment) == "CPU: my box"  # type: ignore[attr-defined]
