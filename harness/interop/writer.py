"""An :class:`ImportedRun` as a run record in the results store, written all at once.

The record's scenario figures are recomputed from the file's request rows under vLLM's
definitions (the record's own, :mod:`harness.loadgen.metrics`), over the tool's benchmark
window; the tool's own figures stay in ``source.tool_figures``. What the file cannot say
(engine arguments, energy, the load generator's CPU, the hardware unless ``--hardware``) is
null or empty with the reason in ``source.unmeasured``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from harness.interop.common import ImportedRun, ImportedScenario
from harness.loadgen.metrics import aggregate
from harness.record.load import LoadShape
from harness.record.migrate import IMPORT_CPU_REASON
from harness.record.run_record import (
    EngineInfo,
    Environment,
    GpuInfo,
    ImportSource,
    ModelInfo,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SourceFile,
    SuiteInfo,
    WorkloadInfo,
)

#: Why the parts every imported record lacks are empty.
COMMON_UNMEASURED = {
    "engine.args": "the file does not record the server's engine arguments",
    "scenarios.energy": "the file has no energy measurement",
    "scenarios.resources": "the file has no telemetry of the server",
    "scenarios.client_cpu_s": IMPORT_CPU_REASON,
    "model.checksum_sha256": "the weights the server loaded cannot be verified from the file",
}


_COUNTED = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\S.*?)\s*$", re.IGNORECASE)


def given_gpus(hardware: str | None) -> list[GpuInfo]:
    """The GPUs a ``--hardware`` text names: ``2x H100 80GB`` is two, a name the roofline table
    knows (``H100``, ``NVIDIA L4``) is one; anything else (``CPU: ...``, ``my box``) names no GPU
    and is kept as the CPU model, so a GPU import is never labelled as a CPU."""
    from harness.arch.gpus import get_gpu

    if not hardware or hardware.strip().lower().startswith("cpu"):
        return []
    counted = _COUNTED.match(hardware)
    if counted:
        n, name = int(counted.group(1)), counted.group(2)
        if 1 <= n <= 1024:
            return [GpuInfo(index=i, name=name) for i in range(n)]
    try:
        get_gpu(hardware)
    except ValueError:
        return []
    return [GpuInfo(index=0, name=hardware.strip())]


def build_record(
    run: ImportedRun, run_id: str, *, hardware: str | None = None, suite: str | None = None
) -> RunRecord:
    """The run record of ``run`` (pure: reads its files only for checksums)."""
    from harness.interop.common import sha256_file
    from harness.version import __version__

    unmeasured = dict(COMMON_UNMEASURED) | run.unmeasured
    if hardware is None:
        unmeasured["environment"] = "the file does not say which hardware served it (give --hardware)"
    files = [SourceFile(path=str(p.resolve()), sha256=sha256_file(p)) for p in run.files if p.is_file()]
    source = ImportSource(
        tool=run.tool,  # type: ignore[arg-type]  # the readers set one of the literal kinds
        version=run.version,
        sha256=files[0].sha256 if files else "",
        files=files,
        command=run.command,
        imported_at=datetime.now(timezone.utc),
        unmeasured=unmeasured,
        tool_figures={s.name: s.tool_figures for s in run.scenarios if s.tool_figures},
    )
    gpus = given_gpus(hardware)
    env = Environment(
        harness_version=__version__,
        git_sha=None,
        python="unknown",
        platform="unknown",
        hostname="unknown",
        cpu_model=None if gpus else hardware,
        cpu_count=None,
        memory_total_bytes=None,
        gpus=gpus,
        packages=_packages(run),
        gpu_reason=f"imported from {run.tool}: "
        + (f"hardware as given with --hardware: {hardware}" if hardware else "the file does not say"),
    )
    scenarios = [_scenario(s, i) for i, s in enumerate(run.scenarios)]
    return RunRecord(
        run_id=run_id,
        status="ok",
        suite=SuiteInfo(name=suite or f"imported-{run.tool}", path=None, sha256=None, spec={}),
        model=ModelInfo(
            preset="local",
            family="unknown",
            source=run.tokenizer or run.model,
            served_name=run.model,
            checksum=None,
        ),
        engine=EngineInfo(kind="endpoint", endpoint=run.endpoint or "unknown", args={}),
        environment=env,
        started_at=run.started_at,
        finished_at=run.finished_at,
        tasks=list(run.tasks),
        scenarios=scenarios,
        source=source,
    )


def _scenario(s: ImportedScenario, index: int) -> ScenarioResult:
    agg = aggregate(s.requests, s.duration_s)
    if not s.requests and s.aggregates is not None:
        agg |= {k: v for k, v in s.aggregates.items() if k in agg and k != "errors"}
        agg["max_concurrency_reached"] = int(s.aggregates.get("max_concurrent_requests") or 0)
    ok = [r for r in s.requests if r.ok]
    mean_in = sum(r.input_tokens for r in ok) / len(ok) if ok else 0.0
    mean_out = sum(r.output_tokens for r in ok) / len(ok) if ok else 0.0
    notes = list(s.notes)
    if s.input_tokens is None:
        notes.append(
            "settings.load.input_tokens: the file does not state the asked-for length; the mean sent"
        )
    if s.output_tokens is None:
        notes.append(
            "settings.load.output_tokens: the file does not state the asked-for length; the mean received"
        )
    load = LoadShape(
        input_tokens=s.input_tokens if s.input_tokens is not None else round(mean_in),
        output_tokens=s.output_tokens if s.output_tokens is not None else round(mean_out),
        num_requests=len(s.requests),
        concurrency=s.concurrency,
        request_rate=s.request_rate,
        warmup_requests=s.warmup_requests,
        temperature=None,  # not stated by the file
        request_timeout_s=None,
    )
    settings = ScenarioSettings(
        load=load, seed=s.seed if s.seed is not None else 0, vllm_bench_command=s.command
    )
    return ScenarioResult(
        name=s.name,
        settings=settings,
        client_cpu_s=None,
        client_cpu_us_per_output_token=None,
        requests_path=f"requests/{index:02d}-{_slug(s.name)}.parquet" if s.requests else None,
        workload=WorkloadInfo(
            prompt_source="imported",
            mean_input_tokens=mean_in if ok else None,
            mean_output_tokens=mean_out if ok else None,
            notes=notes,
        ),
        **{k: v for k, v in agg.items() if k in ScenarioResult.model_fields},
    )


def _packages(run: ImportedRun) -> dict[str, str | None]:
    """The tool's version (and what else the file states) as the record's package versions."""
    out: dict[str, str | None] = {run.tool.replace("vllm-bench", "vllm"): run.version} if run.version else {}
    return out | run.packages


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "scenario"


def write_import(
    run: ImportedRun,
    results: Path,
    *,
    hardware: str | None = None,
    suite: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Write ``run`` as ``results/runs/<run_id>/`` (record, request tables, sample logs) and return the folder.

    Everything is built in a temporary folder beside the final one and renamed into place, so
    a failure leaves nothing behind.
    """
    from harness.loadgen.client import write_requests_parquet
    from harness.run.runner import new_run_id
    from harness.storage.store import runs_dir, write_record

    rid = run_id or new_run_id(f"{run.tool}-{run.model.rsplit('/', 1)[-1]}", suite or "imported")
    record = build_record(run, rid, hardware=hardware, suite=suite)
    base = runs_dir(Path(results))
    base.mkdir(parents=True, exist_ok=True)
    final = base / rid
    if final.exists():
        raise FileExistsError(f"{final} exists already")
    tmp = Path(tempfile.mkdtemp(prefix=f".{rid}.", dir=base))
    try:
        for s, res in zip(run.scenarios, record.scenarios, strict=True):
            if res.requests_path:
                (tmp / res.requests_path).parent.mkdir(parents=True, exist_ok=True)
                write_requests_parquet(str(tmp / res.requests_path), s.requests)
        if run.samples:
            (tmp / "samples").mkdir()
            for name, src in run.samples.items():
                shutil.copyfile(src, tmp / "samples" / name)
        write_record(tmp, record)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
