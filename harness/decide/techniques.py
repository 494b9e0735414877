"""A technique variant against its baseline, ended in the decision's words.

:func:`technique_verdict` reads one :class:`harness.analysis.techniques.TechniqueRow` (what the
Techniques page and ``harness compare --suite`` show) and says ``ship``, ``trade-off``,
``dominated`` (by the baseline), ``inconclusive`` or ``not comparable``, with a sentence such as
``ngram-k3: +36 % tok/s at c1, −17 % at prefix-c4, answers unchanged (McNemar p = 1): ship for
c1 traffic only``.

A throughput change counts where its 95 % interval (from repeats) excludes zero; without
repeats, where it is at least ``min_effect`` (default 5 %), and the sentence says so. An
accuracy change counts where the paired per-document test (else the two standard errors)
puts it below ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.analysis.techniques import ScenarioDelta, TaskDelta, TechniqueRow

TechniqueVerdictKind = Literal["baseline", "ship", "trade-off", "dominated", "inconclusive", "not comparable"]
Z95 = 1.959963984540054


@dataclass(frozen=True)
class TechniqueVerdict:
    variant: str
    verdict: TechniqueVerdictKind
    sentence: str  # the whole line, variant first
    reason: str  # the part after the colon


def _pct(x: float) -> str:
    return f"{100 * x:+.0f} %".replace("-", "−")


def _speed(s: ScenarioDelta, min_effect: float) -> Literal["gain", "loss", "same"] | None:
    rel = s.output_tps_rel
    if rel is None:
        return None
    if s.tps_ci95 is not None:
        lo, hi = s.tps_ci95
        return "gain" if lo > 0 else "loss" if hi < 0 else "same"
    return "gain" if rel >= min_effect else "loss" if rel <= -min_effect else "same"


def _task_worse(d: TaskDelta, alpha: float) -> bool | None:
    """True: significantly worse; False: not; None: cannot tell."""
    if d.delta is None:
        return None
    if d.paired is not None and d.paired.p_value is not None:
        return d.delta < 0 and d.paired.p_value < alpha
    if d.delta_se is not None:
        return d.delta < 0 and abs(d.delta) > Z95 * d.delta_se
    return None


def _accuracy_words(row: TechniqueRow, alpha: float) -> tuple[str, bool]:
    """(words, significantly worse on some task)."""
    tasks = [d for d in row.tasks if d.delta is not None]
    if not tasks:
        return "accuracy not compared", False
    worse = [d for d in tasks if _task_worse(d, alpha)]
    if worse:
        parts = [
            f"{d.task} {d.delta:+.3f}"
            + (f" (p = {d.paired.p_value:.2g})" if d.paired and d.paired.p_value is not None else "")
            for d in worse
        ]
        return "accuracy worse: " + ", ".join(parts), True
    paired = [d.paired for d in tasks if d.paired is not None and d.paired.p_value is not None]
    if paired and len(paired) == len(tasks) and all(p.better == p.worse == 0 for p in paired):
        return "answers unchanged (McNemar p = 1)", False
    if paired:
        low = min(p.p_value for p in paired if p.p_value is not None)
        return f"accuracy unchanged within noise (paired, min p = {low:.2g})", False
    return "accuracy unchanged within ±1.96 standard errors (unpaired)", False


def technique_verdict(
    row: TechniqueRow, *, alpha: float = 0.05, min_effect: float = 0.05
) -> TechniqueVerdict:
    """The verdict of one variant against its baseline (the baseline row itself: ``baseline``)."""
    if row.variant == row.baseline:
        reason = "the reference the other variants are measured against"
        return TechniqueVerdict(row.variant, "baseline", f"{row.variant}: {reason}", reason)
    speeds = [(s, _speed(s, min_effect)) for s in row.scenarios if s.output_tps_rel is not None]
    acc_words, acc_worse = _accuracy_words(row, alpha)
    if not speeds:
        reason = f"no load scenario shared with {row.baseline}; {acc_words}"
        return TechniqueVerdict(row.variant, "not comparable", f"{row.variant}: {reason}", reason)
    first, *rest = speeds
    parts = [f"{_pct(first[0].output_tps_rel or 0.0)} tok/s at {first[0].scenario}"]
    parts += [f"{_pct(s.output_tps_rel or 0.0)} at {s.scenario}" for s, _ in rest]
    noise = (
        ""
        if all(s.tps_ci95 is not None for s, _ in speeds)
        else f" (no repeats: under {100 * min_effect:.0f} % is noise)"
    )
    gains = [s.scenario for s, k in speeds if k == "gain"]
    losses = [s.scenario for s, k in speeds if k == "loss"]
    kind: TechniqueVerdictKind
    if acc_worse:
        kind = "trade-off" if gains else "dominated"
        tail = (
            f"faster at {', '.join(gains)} at an accuracy cost" if gains else f"dominated by {row.baseline}"
        )
    elif gains and not losses:
        kind, tail = "ship", "ship"
    elif gains:
        kind, tail = "trade-off", f"ship for {', '.join(gains)} traffic only (slower at {', '.join(losses)})"
    elif losses:
        kind, tail = "dominated", f"dominated by {row.baseline} (slower, no gain)"
    else:
        kind, tail = "inconclusive", "no measurable change in throughput"
    reason = f"{', '.join(parts)}{noise}, {acc_words}: {tail}"
    return TechniqueVerdict(row.variant, kind, f"{row.variant}: {reason}", reason)
