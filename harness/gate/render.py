"""The gate report rendered: a terminal table (rich), Markdown for a CI job summary, JUnit XML."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from harness.formatting import MISSING, num, signed
from harness.gate.report import FAILING, GateReport, MetricComparison

if TYPE_CHECKING:
    from rich.console import Console

# ---------------------------------------------------------------- rendering


def change_text(c: MetricComparison) -> str:
    if c.change_abs is None:
        return MISSING
    rel = f" ({c.change_rel:+.1%})" if c.change_rel is not None else ""
    return signed(c.change_abs) + rel


def allowed_text(c: MetricComparison) -> str:
    """The allowed change in the change column's terms: `≥ -0.02`, `≤ +10% (+4.52)`."""
    op, sign = ("≥", "-") if c.higher_is_better else ("≤", "+")
    effective = f"{sign}{num(c.allowed_abs)}" if c.allowed_abs is not None else None
    if c.max_abs_change is not None and c.max_rel_change is not None:
        bound = f"{op} {effective or 'max'} (larger of {num(c.max_abs_change)}, {c.max_rel_change:.0%})"
    elif c.max_rel_change is not None:
        bound = f"{op} {sign}{c.max_rel_change:.0%}" + (f" ({effective})" if effective else "")
    else:
        bound = f"{op} {sign}{num(c.max_abs_change or 0.0)}"
    return bound


def noise_text(c: MetricComparison, noise_sigmas: float | None = None) -> str:
    """The change's interval half-width and where the noise comes from: `±4.1 (3 repeats)`."""
    del noise_sigmas
    if c.baseline is None or c.candidate is None:
        return MISSING
    if c.ci_low is not None and c.ci_high is not None:
        return f"±{num((c.ci_high - c.ci_low) / 2.0)} ({c.noise_basis})"
    return c.noise_basis or "no noise estimate"


def verdict_text(c: MetricComparison) -> str:
    """The verdict, with what would resolve an inconclusive one."""
    if c.verdict == "inconclusive" and c.repeats_needed is not None:
        return f"inconclusive (~{c.repeats_needed} repeats)"
    return c.verdict


TABLE_COLUMNS = ("metric", "baseline", "candidate", "change", "allowed", "noise", "verdict")


def table_rows(report: GateReport) -> list[tuple[str, ...]]:
    """The report as rows of TABLE_COLUMNS, regressions first (shared by terminal and Markdown)."""
    return [
        (
            c.label,
            num(c.baseline),
            num(c.candidate),
            change_text(c),
            allowed_text(c),
            noise_text(c),
            verdict_text(c),
        )
        for c in report.comparisons
    ]


def _preamble(report: GateReport) -> list[str]:
    lines = [
        f"candidate {report.candidate_run} vs baseline {report.baseline_run}",
        f"model {report.model} · suite {report.suite} · {report.hardware} · thresholds: {report.thresholds_source}",
    ]
    if report.notes:
        lines.append("changed since the baseline: " + "; ".join(report.notes))
    return lines


_STYLE = {
    "regression": "bold red",
    "missing": "bold red",
    "inconclusive": "bold yellow",
    "improvement": "bold green",
    "pass": "green",
    "new": "cyan",
    "unmeasured": "dim",
}


def render_terminal(report: GateReport, console: Console) -> None:
    """Print the report: header, configuration differences, the table, the verdict line."""
    from rich.markup import escape
    from rich.table import Table

    for line in _preamble(report):
        console.print(escape(line), highlight=False, soft_wrap=True)
    if report.candidate_error is not None:
        console.print(
            f"[bold red]candidate run failed:[/] {escape(report.candidate_error)}",
            highlight=False,
            soft_wrap=True,
        )
    if report.mismatches:
        head = (
            "configuration differs (--allow-mismatch):" if report.allow_mismatch else "configuration differs:"
        )
        console.print(f"[bold yellow]{head}[/]")
        for m in report.mismatches:
            console.print(f"  • {escape(m)}", highlight=False, soft_wrap=True)
    if not report.refused:
        table = Table(title="regression gate", title_justify="left")
        for col in TABLE_COLUMNS:
            table.add_column(col, justify="right" if col in ("baseline", "candidate", "change") else "left")
        for row, c in zip(table_rows(report), report.comparisons, strict=True):
            table.add_row(*(escape(cell) for cell in row[:-1]), f"[{_STYLE[c.verdict]}]{c.verdict}[/]")
        console.print(table)
        console.print(escape(f"family: {report.family_note}"), highlight=False, soft_wrap=True)
        for c in _explained(report):
            console.print(f"  • {escape(c.label)}: {escape(c.reason)}", highlight=False, soft_wrap=True)
    if report.invalid:
        console.print("[bold yellow]invalid points (not compared):[/]")
        for line in report.invalid:
            console.print(f"  • {escape(line)}", highlight=False, soft_wrap=True)
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[report.exit_code]
    if report.status == "INCONCLUSIVE":
        style = "bold yellow"
    console.print(f"[{style}]{escape(report.headline())}[/]", highlight=False, soft_wrap=True)


def _explained(report: GateReport) -> list[MetricComparison]:
    """Comparisons whose reason is worth a line under the table: failures, inconclusive ones,
    and paired accuracy (the documents that flipped)."""
    return [
        c
        for c in report.comparisons
        if c.verdict in ("regression", "missing", "inconclusive")
        or (c.noise_basis or "").startswith("paired")
    ]


_MD_ESCAPE = re.compile(r"([\\`|]|(?<=\])\()")


def _md_cell(text: str) -> str:
    """Record text made inert in Markdown: no HTML (``<script>``, ``<img onerror>`` become
    entities), no links or images (``](`` broken), no code spans, no table breaks; one line."""
    return _MD_ESCAPE.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\r", " ").replace("\n", " ")


def render_markdown(report: GateReport) -> str:
    """The report as GitHub-flavoured Markdown, for a CI job summary."""
    lines = [f"## harness gate: {report.status}", ""]
    lines += [f"{_md_cell(line)}  " for line in _preamble(report)]
    lines.append("")
    if report.candidate_error is not None:
        lines += [f"**Candidate run failed:** {_md_cell(report.candidate_error)}", ""]
    if report.mismatches:
        lines.append(
            "**Configuration differs" + (" (--allow-mismatch):**" if report.allow_mismatch else ":**")
        )
        lines += [f"- {_md_cell(m)}" for m in report.mismatches]
        lines.append("")
    if not report.refused:
        lines.append("| " + " | ".join(TABLE_COLUMNS) + " |")
        lines.append(
            "|"
            + "|".join("---:" if c in ("baseline", "candidate", "change") else "---" for c in TABLE_COLUMNS)
            + "|"
        )
        for row, c in zip(table_rows(report), report.comparisons, strict=True):
            *cells, verdict = row
            mark = (
                f"**{verdict}**"
                if c.verdict in FAILING
                else (f"_{verdict}_" if c.verdict == "inconclusive" else verdict)
            )
            lines.append("| " + " | ".join(_md_cell(x) for x in [*cells, mark]) + " |")
        lines.append("")
        lines += [f"Family: {_md_cell(report.family_note)}.", ""]
        if report.inconclusive:
            policy = (
                "fails the gate (`--inconclusive fail`, the default)"
                if report.inconclusive_policy == "fail"
                else "does not fail the gate (`--inconclusive pass`)"
            )
            lines += [f"_inconclusive_: the interval straddles the bound or no noise is known; {policy}.", ""]
        lines += [f"- {_md_cell(c.label)}: {_md_cell(c.reason)}" for c in _explained(report)]
        lines += [""] if _explained(report) else []
    if report.invalid:
        lines.append("**Invalid points (not compared):**")
        lines += [f"- {_md_cell(line)}" for line in report.invalid]
        lines.append("")
    lines += [f"**{_md_cell(report.headline())}**", ""]
    return "\n".join(lines)


def render_error_markdown(message: str) -> str:
    """Markdown for a gate that could not run at all (exit 2)."""
    return f"## harness gate: REFUSED\n\n**REFUSED (exit 2):** {_md_cell(message)}\n"


def _junit_suite(name: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("testsuites", name="harness gate")
    suite = ET.SubElement(root, "testsuite", name=name)
    return root, suite


def _junit_finish(root: ET.Element, suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    counts = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    for el in (root, suite):
        for k, v in counts.items():
            el.set(k, str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_junit(report: GateReport) -> str:
    """JUnit XML: one test case per metric (`<failure>` for regressions), so CI shows it natively.

    A failed candidate adds a failing `run status` case; a refusal is a single `<error>` case.
    """
    root, suite = _junit_suite(f"harness gate: {report.model} × {report.suite}")
    if report.candidate_error is not None:
        case = ET.SubElement(suite, "testcase", name="run status", classname="harness.gate")
        ET.SubElement(
            case, "failure", message="candidate run failed", type="run_failed"
        ).text = report.candidate_error
    if report.refused:
        case = ET.SubElement(suite, "testcase", name="configuration", classname="harness.gate")
        ET.SubElement(case, "error", message=report.headline(), type="mismatch").text = "\n".join(
            report.mismatches
        )
        return _junit_finish(root, suite)
    for c, row in zip(report.comparisons, table_rows(report), strict=True):
        group = "accuracy" if c.kind == "accuracy" else (c.scenario or "run")
        case = ET.SubElement(suite, "testcase", name=c.metric, classname=f"harness.gate.{group}")
        detail = "; ".join(f"{k}={v}" for k, v in zip(TABLE_COLUMNS, row, strict=True))
        if c.failed or (c.verdict == "inconclusive" and report.fails(c)):
            ET.SubElement(case, "failure", message=c.reason, type=c.verdict).text = detail
        elif c.verdict == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive (--inconclusive pass): {c.reason}")
            ET.SubElement(case, "system-out").text = f"inconclusive: {c.reason}; {detail}"
        elif c.verdict == "unmeasured":
            ET.SubElement(case, "skipped", message=c.reason)
        else:
            ET.SubElement(case, "system-out").text = f"{c.verdict}: {c.reason}; {detail}"
    return _junit_finish(root, suite)


def render_error_junit(message: str) -> str:
    """JUnit XML for a gate that could not run at all (exit 2): one `<error>` case."""
    root, suite = _junit_suite("harness gate")
    case = ET.SubElement(suite, "testcase", name="comparison", classname="harness.gate")
    ET.SubElement(case, "error", message=message, type="refused")
    return _junit_finish(root, suite)
