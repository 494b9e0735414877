"""The run page's energy card: each energy value the record holds, with its window and confidence.

Every row is one :class:`~harness.record.run_record.EnergyValue` as stored (nothing re-derived here): the
headline measured interval, the gross window (warm-up included), the steady state and the
accuracy phase, each with its confidence or the reason it is null; then the idle baseline and
the GPU facts that qualify the figures (counter update period, MIG, power scope).
"""

from __future__ import annotations

from harness.dashboard.html import esc
from harness.dashboard.layout import cell, kv_table, plain_table, unit
from harness.formatting import MISSING, fmt
from harness.record.run_record import EnergyValue, RunRecord, scenario_energy_value


def _row(label: str, ev: EnergyValue | None) -> str:
    if ev is None:
        return f"<tr><td>{esc(label)}</td>" + cell("j", None) * 5 + f"<td>{MISSING}</td><td></td></tr>"
    if ev.energy_j is None:
        note = ev.reason or "not measured"
    elif ev.confidence == "low":
        note = f"low confidence: {ev.low_confidence_reason}"
    else:
        note = "high confidence"
    per_sample = ev.energy_per_correct_sample_j if ev.window == "accuracy" else ev.energy_per_request_j
    return (
        f"<tr><td>{esc(label)}</td>{cell('j', ev.energy_j)}{cell('s', ev.duration_s)}{cell('num', ev.avg_power_w)}"
        f"{cell('j', ev.energy_per_output_token_j if ev.window != 'accuracy' else ev.energy_per_sample_j)}"
        f"{cell('j', per_sample)}<td>{esc(ev.source or '')}</td><td>{esc(note)}</td></tr>"
    )


def energy_section(rec: RunRecord) -> str:
    """The energy card; empty when the record holds no energy figure at all (not even a null one)."""
    rows: list[str] = []
    for name, s in rec.performance.items():
        energy = s.energy
        head = scenario_energy_value(s)
        rows.append(_row(f"{name}: measured interval (headline)", head))
        gross = scenario_energy_value(s, "scenario_window") if energy is not None else None
        if gross is not None and gross is not head:
            rows.append(_row(f"{name}: whole window, with warm-up", gross))
        steady = scenario_energy_value(s, "steady_state")
        if steady is not None:
            rows.append(_row(f"{name}: steady state", steady))
        elif energy is not None and energy.steady_state_reason:
            rows.append(
                f"<tr><td>{esc(name)}: steady state</td>"
                + cell("j", None) * 5
                + f"<td></td><td>{esc(energy.steady_state_reason)}</td></tr>"
            )
    res = rec.resources
    acc = res.accuracy_energy if res is not None else None
    if acc is not None:
        rows.append(_row("accuracy (all tasks)", acc.value))
    if not rows:
        return ""
    facts: list[tuple[str, str | None]] = []
    idle = res.idle if res is not None else None
    if idle is not None:
        idle_text = unit(fmt("num", idle.power_w), "W") or f"{MISSING} ({idle.reason})"
        if idle.settle_s is not None:
            idle_text += f"; waited {fmt('s', idle.settle_s)} s for power to settle" + (
                "" if idle.settled else " (still falling at the cap)"
            )
        if idle.power_spread_w is not None:
            idle_text += f"; spread σ {fmt('num', idle.power_spread_w)} W"
        facts.append(("Idle power", idle_text))
    if acc is not None and acc.correct_reason:
        facts.append(("Per correct answer", acc.correct_reason))
    for g in rec.environment.gpus:
        bits = []
        if g.counter_update_period_s is not None:
            bits.append(f"counter updates every {g.counter_update_period_s * 1000:.0f} ms")
        if g.mig_mode:
            bits.append("MIG mode: no energy reported")
        if g.power_scope and g.power_scope != "gpu":
            bits.append(f"power scope {g.power_scope}")
        if bits:
            facts.append((f"GPU {g.index}", "; ".join(bits)))
    ident = rec.environment.gpu_identity
    if ident is not None:
        facts.append(
            (
                "GPU identity",
                ident.status + (f": {ident.reason}" if ident.reason else " by UUID (NVML processes)"),
            )
        )
    headers = [
        "Window",
        "Energy (J)",
        "Duration",
        "Power (W)",
        "J/token (J/sample)",
        "J/request (J/correct)",
        "Source",
        "Confidence",
    ]
    return (
        '<section class="card" id="energy"><h2>Energy</h2><p class=note>GPU energy by window. The headline '
        "J/token covers first measured send to last completion (prefill charged to output tokens, as "
        "ML.ENERGY does); the whole window includes warm-up and prompt building.</p>"
        + plain_table(headers, rows, num_from=1)
        + (kv_table(facts) if facts else "")
        + "</section>"
    )
