"""Each claim of the registry against the records of a results store: verdicts with their evidence.

For every part of a claim the first check (in the registry's order: real models before tiny
mechanism models) whose runs are all in the store decides; a part with no such check is
*not measured here* and says why (a GPU, Hub weights, or simply the runs to make). Records are
only read, never changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.claims import evidence as ev
from harness.claims.rules import (
    INCONCLUSIVE,
    NOT_MEASURED,
    KvPoint,
    Outcome,
    PairedCounts,
    TaskComparison,
    Verdict,
    combine,
    decide_accuracy_not_worse,
    decide_answers_unchanged,
    decide_kv_ratio,
    decide_point_ratio,
    decide_tpot_ratio,
    decide_window_bounded,
    paired_binary_ci,
    unpaired_ci,
)
from harness.claims.spec import (
    AccuracyNotWorse,
    AnswersUnchanged,
    Check,
    Claim,
    KvBytesRatio,
    KvWindowBounded,
    Registry,
    RunRef,
    SpeedRatio,
)
from harness.record.run_record import RunRecord

MECHANISM_NOTE = (
    "tiny random-weight models with the real family's KV layout: mechanism only, accuracy meaningless"
)


@dataclass(frozen=True)
class Store:
    """The records of a results store, with each run's folder (for sample logs and series)."""

    records: Sequence[RunRecord]
    run_dirs: dict[str, Path] = field(default_factory=dict)

    def latest(self, suite: str, ref: RunRef) -> RunRecord | None:
        """The latest ok record of `ref` in `suite` (no variant, or the baseline, when ref has none)."""
        found = None
        for r in sorted(self.records, key=lambda r: r.started_at):
            if r.status != "ok" or r.suite.name != suite or r.model.preset != ref.model:
                continue
            v = r.variant
            if ref.variant is None and v is not None and not v.is_baseline:
                continue
            if ref.variant is not None and (v is None or v.name != ref.variant):
                continue
            found = r
        return found

    def run_dir(self, rec: RunRecord) -> Path | None:
        return self.run_dirs.get(rec.run_id)


@dataclass(frozen=True)
class PartResult:
    name: str
    verdict: Verdict
    scope: str | None  # "real" or "mechanism" of the check that decided; None when not measured
    evidence: str
    runs: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    not_measured: list[str] = field(default_factory=list)  # what the checks not used would need
    note: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    id: str
    statement: str
    source_title: str
    source_url: str
    measures: str
    verdict: Verdict
    partial: bool  # some parts measured, others not
    parts: list[PartResult]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def machine_has_gpu() -> bool:
    """Whether an NVIDIA driver is present here (a presence check, not a measurement)."""
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def _sides(check: Check) -> list[RunRef]:
    r = check.rule
    if isinstance(r, KvWindowBounded):
        return [r.windowed, r.control]
    if isinstance(r, KvBytesRatio):
        return [r.candidate] + ([r.reference] if r.reference is not None else [])
    return [r.candidate, r.reference]


def _missing_reason(check: Check, missing: list[RunRef], has_gpu: bool) -> str:
    from harness.model.presets import PRESETS

    why = []
    if "gpu" in check.needs and not has_gpu:
        why.append("needs a GPU (none on this machine)")
    if "hub-weights" in check.needs:
        ids = sorted({p.hub_id for m in missing if (p := PRESETS.get(m.model)) is not None and p.hub_id})
        why.append("needs Hub weights" + (f" ({', '.join(ids)})" if ids else ""))
    models = " ".join(f"--model {m}" for m in dict.fromkeys(x.model for x in missing))
    why.append(
        f"runs missing: {', '.join(m.label() for m in missing)} in suite {check.suite} (`harness run {check.suite} {models}`)"
    )
    return f"[{check.scope}] " + "; ".join(why)


def evaluate_check(check: Check, store: Store) -> tuple[Outcome, list[str]]:
    """One check on the store's records (all its sides must be present): its outcome and run ids."""
    rule = check.rule
    found = [store.latest(check.suite, s) for s in _sides(check)]
    recs = [r for r in found if r is not None]
    if len(recs) != len(found):
        raise ValueError(f"check on suite {check.suite}: a run is missing (evaluate_claim says which)")
    runs = [r.run_id for r in recs]
    if isinstance(rule, KvWindowBounded):
        return _window(rule, recs[0], recs[1], store), runs
    if isinstance(rule, KvBytesRatio):
        return _kv_ratio(rule, recs), runs
    cand, ref = recs[0], recs[1]
    if isinstance(rule, AccuracyNotWorse):
        return decide_accuracy_not_worse(_task_comparisons(rule, cand, ref, store), rule.margin), runs
    if isinstance(rule, AnswersUnchanged):
        return decide_answers_unchanged(
            _paired_counts(cand, ref, store), rule.max_changed_frac, rule.alpha
        ), runs
    assert isinstance(rule, SpeedRatio)
    return _speed(rule, cand, ref, store), runs


def _window(rule: KvWindowBounded, w: RunRecord, c: RunRecord, store: Store) -> Outcome:
    wp = ev.kv_sweep(w, store.run_dir(w), rule.scenario_prefix)
    cp = ev.kv_sweep(c, store.run_dir(c), rule.scenario_prefix)
    arch = ev.architecture(w) or {}
    mem = w.resources.memory if w.resources is not None else None
    out = decide_window_bounded(
        arch.get("sliding_window"),
        mem.kv_cache_block_size if mem is not None else None,
        [KvPoint(p.context_tokens, p.measured_kv_tokens) for p in wp],
        [KvPoint(p.context_tokens, p.measured_kv_tokens) for p in cp],
        rule.slack_blocks,
        rule.min_points_past,
    )
    figures = dict(
        out.figures,
        sweep={rule.windowed.label(): [asdict(p) for p in wp], rule.control.label(): [asdict(p) for p in cp]},
    )
    return Outcome(out.verdict, out.evidence, figures)


def _kv_ratio(rule: KvBytesRatio, recs: list[RunRecord]) -> Outcome:
    cand = recs[0]
    kc = ev.kv_bytes(cand)
    figs: dict[str, Any] = {"candidate": asdict(kc)}
    if kc.capacity_tokens:
        figs["max_sequences_at_context"] = {
            "context_tokens": rule.context_tokens,
            "sequences": kc.capacity_tokens // rule.context_tokens,
        }
    if rule.reference is None:
        out = decide_kv_ratio(
            kc.measured, kc.mha, rule.at_most, "MHA of the same shape, architecture arithmetic", kc.reason
        )
    else:
        kr = ev.kv_bytes(recs[1])
        figs["reference"] = asdict(kr)
        out = decide_kv_ratio(
            kc.measured,
            kr.measured,
            rule.at_most,
            f"{rule.reference.label()} measured",
            kc.reason or kr.reason,
        )
    extra = ""
    if kc.capacity_tokens:
        extra += (
            f"; its {kc.capacity_tokens:,} slots hold {kc.capacity_tokens // rule.context_tokens:,} sequences of "
            f"{rule.context_tokens:,} tokens (no window savings counted)"
        )
    if kc.measured is not None and kc.predicted:
        extra += f"; the architecture predicts {kc.predicted:,} B/token ({kc.measured / kc.predicted:.2f}× measured/predicted)"
    return Outcome(out.verdict, out.evidence + extra, dict(out.figures, **figs))


def _task_comparisons(
    rule: AccuracyNotWorse, cand: RunRecord, ref: RunRecord, store: Store
) -> list[TaskComparison]:
    from harness.analysis.techniques import samples_path

    out = []
    names = rule.tasks or [t for t in cand.accuracy if t in ref.accuracy]
    for name in names:
        c, r = cand.accuracy.get(name), ref.accuracy.get(name)
        if c is None or r is None:
            continue
        paired = _paired(c, samples_path(store.run_dir(ref), r), samples_path(store.run_dir(cand), c))
        if paired is not None:
            if paired.ci95_low is not None and paired.ci95_high is not None:
                lo, hi, method = paired.ci95_low, paired.ci95_high, "paired (bootstrap)"
            else:
                lo, hi = paired_binary_ci(paired.n, paired.gained, paired.lost)
                method = "paired (McNemar)"
            out.append(TaskComparison(name, c.value, r.value, lo, hi, method, paired.n))
        else:
            lo2, hi2 = unpaired_ci(c.value - r.value, c.stderr, r.stderr)
            out.append(TaskComparison(name, c.value, r.value, lo2, hi2, "unpaired (stderr)", c.n_samples))
    return out


def _paired(task: Any, base_log: Path | None, cand_log: Path | None) -> Any:
    if base_log is None or cand_log is None:
        return None
    from harness.rigor.compare import SampleLogError, paired_accuracy

    try:
        return paired_accuracy(task, base_log, cand_log).result
    except (SampleLogError, ValueError, OSError):
        return None


def _paired_counts(cand: RunRecord, ref: RunRecord, store: Store) -> list[PairedCounts]:
    from harness.analysis.techniques import samples_path

    out = []
    for name, c in cand.accuracy.items():
        r = ref.accuracy.get(name)
        if r is None:
            continue
        p = _paired(c, samples_path(store.run_dir(ref), r), samples_path(store.run_dir(cand), c))
        if p is not None and p.method == "mcnemar_exact":
            out.append(PairedCounts(name, p.n, p.gained, p.lost, p.p_value))
    return out


def _speed(rule: SpeedRatio, cand: RunRecord, ref: RunRecord, store: Store) -> Outcome:
    sc, sr = cand.performance.get(rule.scenario), ref.performance.get(rule.scenario)
    if sc is None or sr is None:
        return Outcome(
            INCONCLUSIVE, f"scenario {rule.scenario} is not in both runs: run the suite's scenario on both"
        )
    if rule.figure == "tpot_ms":
        return decide_tpot_ratio(
            ev.request_tpot_ms(cand, store.run_dir(cand), rule.scenario),
            ev.request_tpot_ms(ref, store.run_dir(ref), rule.scenario),
            rule.at_most,
            rule.at_least,
            rule.alpha,
        )
    return decide_point_ratio(
        ev.point_figure(sc, rule.figure),
        ev.point_figure(sr, rule.figure),
        rule.figure,
        rule.at_most,
        rule.at_least,
        rule.tolerance,
    )


def evaluate_claim(claim: Claim, store: Store, has_gpu: bool) -> ClaimResult:
    parts = []
    for part in claim.parts:
        missing_reasons: list[str] = []
        decided: PartResult | None = None
        for check in part.checks:
            sides = _sides(check)
            missing = [s for s in sides if store.latest(check.suite, s) is None]
            if missing:
                missing_reasons.append(_missing_reason(check, missing, has_gpu))
                continue
            if decided is None:
                out, runs = evaluate_check(check, store)
                note = check.note or (MECHANISM_NOTE if check.scope == "mechanism" else None)
                decided = PartResult(
                    part.name, out.verdict, check.scope, out.evidence, runs, out.figures, [], note
                )
        if decided is None:
            parts.append(
                PartResult(
                    part.name, NOT_MEASURED, None, "; ".join(missing_reasons), not_measured=missing_reasons
                )
            )
        else:
            parts.append(PartResult(**{**asdict(decided), "not_measured": missing_reasons}))
    verdicts = [p.verdict for p in parts]
    measured = [v for v in verdicts if v != NOT_MEASURED]
    return ClaimResult(
        id=claim.id,
        statement=claim.statement,
        source_title=claim.source.title,
        source_url=claim.source.url,
        measures=claim.measures,
        verdict=combine(verdicts),
        partial=bool(measured) and len(measured) < len(verdicts),
        parts=parts,
    )


def load_store(results: Path) -> Store:
    from harness.storage.store import iter_record_paths, read_record

    recs, dirs = [], {}
    for path in iter_record_paths(results):
        try:
            rec = read_record(path)
        except ValueError:
            continue  # `harness results` reports unreadable records; a claim only lacks that run
        recs.append(rec)
        dirs[rec.run_id] = path.parent
    return Store(recs, dirs)


def evaluate_claims(
    results: Path, registry: Registry | None = None, has_gpu: bool | None = None, store: Store | None = None
) -> list[ClaimResult]:
    """Every claim of the registry (default: the shipped one) against the store at `results`
    (or `store`, already loaded); `has_gpu` defaults to :func:`machine_has_gpu`."""
    from harness.claims.spec import load_registry

    reg = registry or load_registry()
    store = store if store is not None else load_store(results)
    gpu = machine_has_gpu() if has_gpu is None else has_gpu
    return [evaluate_claim(c, store, gpu) for c in reg.claims]
