"""Accuracy under load as text: one line per point and task, and the probe per point (pure)."""

from __future__ import annotations

from harness.record.run_record import RunRecord


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def under_load_lines(record: RunRecord) -> list[str]:
    """A fixed-width table of every point measured under load (empty when none was)."""
    head = (
        f"{'point':<14} {'task':<20} {'idle':>6} {'load':>6} {'ci95':>13} {'better':>6} {'worse':>6} "
        f"{'p':>8} {'ans.chg':>7} {'txt.chg':>7} {'max|dLL|':>9} {'eval req':>8} {'in load':>7}"
    )
    lines: list[str] = []
    probes: list[str] = []
    for s in record.scenarios:
        acc = s.accuracy_under_load
        if acc is not None:
            tr = acc.traffic
            for t in acc.tasks:
                p = t.paired
                ci = f"{_fmt(t.ci95_low)}-{_fmt(t.ci95_high)}" if t.ci95_low is not None else "-"
                lines.append(
                    f"{s.name:<14} {t.task:<20} {_fmt(p.idle_value if p else None):>6} {t.value:>6.3f} {ci:>13} "
                    f"{p.flips_better if p else '-':>6} {p.flips_worse if p else '-':>6} "
                    f"{_fmt(p.p_value if p else None, '.3g'):>8} "
                    f"{_fmt(p.answers_changed_share if p else None, '.3f'):>7} "
                    f"{_fmt(p.generated_text_changed_share if p else None, '.3f'):>7} "
                    f"{_fmt(p.max_abs_delta_loglik if p else None, '.3g'):>9} "
                    f"{tr.requests if tr else '-':>8} {_fmt(tr.during_load_share if tr else None, '.0%'):>7}"
                    + (f"  ({t.reason})" if t.reason else "")
                )
            if acc.error:
                lines.append(f"{s.name:<14} evaluation failed: {acc.error}")
        inv = s.invariance
        if inv is not None:
            probes.append(
                f"{s.name:<14} identical {inv.identical}/{inv.prompts} ({inv.identical_share:.0%}) "
                f"first divergence {inv.first_divergence} ({inv.tokens_compared})"
                + (f"  error: {inv.error}" if inv.error else "")
            )
    out = [head, *lines] if lines else []
    if probes:
        out += ["", "batch-invariance probe (greedy, alone vs beside the load):", *probes]
    return out
