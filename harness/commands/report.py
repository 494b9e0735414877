"""Terminal views of run records (rich tables): the summary after a run, `harness runs`, `show`, `compare`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.analysis.compare import Comparison, FigureRow, provenance
from harness.formatting import MISSING, show
from harness.record.run_record import RunRecord


def print_summary(records: list[RunRecord], results: Path, console: Console) -> None:
    """What each run measured, and where its record really is (after `harness run`): in the
    results folder, or the fallback folder where that one could not take it."""
    from harness.storage.fallback import record_location

    for rec in records:
        print_results(rec, console)
        path = record_location(results, rec.run_id)
        where = escape(str(path)) if path else "[red]written nowhere[/] (see the error above)"
        console.print(f"record: {where}", highlight=False)


def print_results(rec: RunRecord, console: Console) -> None:
    """One record's status, accuracy, performance and resources tables."""
    status = "[green]ok[/]" if rec.status == "ok" else f"[red]failed[/]: {rec.error}"
    console.print(
        f"\n[bold]{rec.model.preset}[/] × {rec.suite.name}  ({rec.run_id})  {status}", highlight=False
    )
    if rec.accuracy:
        t = Table(title="Accuracy (lm-eval)")
        for c in ("task", "metric", "value", "± stderr", "n", "shots"):
            t.add_column(c, justify="right" if c not in ("task", "metric") else "left")
        for r in rec.accuracy.values():
            t.add_row(
                r.task,
                r.metric,
                show("acc", r.value),
                show("acc", r.stderr),
                str(r.n_samples),
                str(r.num_fewshot),
            )
        console.print(t)
    if rec.performance:
        t = Table(title="Performance (streaming completions)")
        cols = (
            "scenario",
            "load",
            "ok/fail",
            "out tok/s",
            "req/s",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "TPOT p50 ms",
            "ITL p50 ms",
            "E2E p50 ms",
            "client µs/tok",
        )
        for c in cols:
            t.add_column(c, justify="left" if c in ("scenario", "load") else "right")
        for name, s in rec.performance.items():
            st = s.settings.load
            load = f"c={st.concurrency}" if st.request_rate is None else f"{st.request_rate:g} req/s"
            t.add_row(
                name,
                f"{load} {st.input_tokens}/{st.output_tokens}",
                f"{s.completed}/{s.failed}",
                show("tps", s.output_throughput),
                show("tps", s.request_throughput),
                show("ms", s.median_ttft_ms),
                show("ms", s.p99_ttft_ms),
                show("ms", s.median_tpot_ms),
                show("ms", s.median_itl_ms),
                show("ms", s.median_e2el_ms),
                show("int", s.client_cpu_us_per_output_token),
            )
        console.print(t)
    if rec.resources is not None:
        res = rec.resources
        peak = show("bytes", res.engine_peak_rss_bytes)
        energy = (
            show("j", res.energy_j, "J")
            if res.energy_j is not None
            else f"null ({res.energy.reason if res.energy else '?'})"
        )
        console.print(f"engine peak RSS {peak}; energy {energy}", highlight=False)


def print_runs(records: list[RunRecord], console: Console) -> None:
    """One line per run, oldest first (`harness runs`)."""
    from harness.analysis.tables import model_label
    from harness.record.hardware import hardware_label

    t = Table(title=f"{len(records)} run(s)")
    # Ids are copied into other commands: never cut them short (other columns give way).
    t.add_column("run id", no_wrap=True, min_width=max((len(r.run_id) for r in records), default=6))
    for c in (
        "started (UTC)",
        "model",
        "suite",
        "hardware",
        "status",
        "tasks",
        "scenarios",
        "duration",
    ):
        t.add_column(c, justify="right" if c in ("tasks", "scenarios", "duration") else "left")
    for rec in records:
        status = "[green]ok[/]" if rec.status == "ok" else "[red]failed[/]"
        t.add_row(
            escape(rec.run_id),
            f"{rec.started_at:%Y-%m-%d %H:%M}",
            escape(model_label(rec)),
            escape(rec.suite.name),
            escape(hardware_label(rec.environment)),
            status,
            str(len(rec.tasks)),
            str(len(rec.scenarios)),
            f"{rec.duration_s:,.0f} s",
        )
    console.print(t)


def print_record(rec: RunRecord, run_dir: Path, console: Console) -> None:
    """One record's provenance and results (`harness show`)."""
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for key, value in provenance(rec).items():
        t.add_row(key, escape(value))
    t.add_row("duration", f"{rec.duration_s:,.1f} s")
    t.add_row("schema", f"v{rec.schema_version}")
    console.print(t)
    print_results(rec, console)
    console.print(f"record: {run_dir / 'record.json'}", highlight=False)


def _kind(row: FigureRow) -> str:
    """The formatter kind (harness.formatting) of a compared figure."""
    if row.section == "task":
        return "acc"
    if row.metric.endswith("_ms"):
        return "ms"
    if row.metric.endswith("_throughput"):
        return "tps"
    if row.metric.endswith("_j"):
        return "j"
    return "num"


def _delta_cell(row: FigureRow, i: int) -> str:
    d = row.delta(i)
    if d is None:
        return MISSING
    text = show("delta", d) if row.section == "task" else f"{'+' if d > 0 else ''}{show(_kind(row), d)}"
    rel = row.rel_delta(i)
    if rel is not None and row.section == "scenario":
        text += f" ({rel:+.1%})"
    noise = row.noise(i)
    if noise is not None:
        text += f" ±{show('acc', 2 * noise)}"
        if abs(d) <= 2 * noise:
            return f"[dim]{text}[/]"  # within twice the combined standard error: not a change
    better = row.better(i)
    if better is None:
        return text
    return f"[green]{text}[/]" if better else f"[red]{text}[/]"


def print_comparison(cmp: Comparison, console: Console) -> None:
    """Two or more records side by side, deltas against the first (`harness compare`)."""
    n = len(cmp.records)
    heads = ["A"] + [chr(ord("A") + i) for i in range(1, n)]
    t = Table(title="Runs", show_lines=False)
    t.add_column("")
    for h in heads:
        t.add_column(h)
    differing = set(cmp.differing_provenance)
    for key, values in cmp.provenance:
        t.add_row(f"[bold]{key}[/]" if key in differing else key, *(escape(v) for v in values))
    console.print(t)
    delta_heads = [f"Δ {h}−A" for h in heads[1:]]
    for section, title in (("task", "Accuracy (headline metric, Δ ±2 SE)"), ("scenario", "Performance")):
        rows = [r for r in cmp.rows if r.section == section]
        if not rows:
            continue
        t = Table(title=title)
        t.add_column(section)
        t.add_column("metric")
        for h in heads:
            t.add_column(h, justify="right")
        for h in delta_heads:
            t.add_column(h, justify="right")
        for r in rows:
            t.add_row(
                escape(r.name),
                escape(r.label),
                *(show(_kind(r), v) for v in r.values),
                *(_delta_cell(r, i) for i in range(1, n)),
            )
        console.print(t)
    if not cmp.rows:
        console.print("neither run has tasks or scenarios to compare")
