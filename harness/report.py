"""Terminal summary of finished runs (rich tables)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.formatting import show
from harness.records import RunRecord
from harness.store import runs_dir


def print_summary(records: list[RunRecord], results: Path, console: Console) -> None:
    for rec in records:
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
                st = s.settings
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
        console.print(f"record: {runs_dir(results) / rec.run_id / 'record.json'}", highlight=False)
