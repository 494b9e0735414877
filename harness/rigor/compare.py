"""The gate's noise-aware and paired comparisons (pure apart from reading sample logs).

Performance, over repeats
    :func:`noise_check` says whether two sets of repeats differ beyond their noise (Welch's
    interval of the difference excludes zero). The gate itself does not use it as a filter any
    more: it puts the interval of the change against the bound (:func:`harness.gate.compare.judge`).

Accuracy, paired per document
    Both runs evaluated the same documents, so their per-sample scores (lm-eval's sample logs,
    ``samples/<task>.jsonl``) are compared pair by pair: an exact McNemar test for 0/1 metrics
    (only flipped documents carry information), a sign-flip permutation test (exact up to 16
    moved documents) for continuous ones; both hold their level at any number of documents,
    unlike a bootstrap. The result names how many documents flipped each way.

Validity
    A point flagged invalid in either run cannot be compared: the gate refuses, naming why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.stats import PairedResult, mcnemar_exact, welch_test
from harness.stats_bounds import binom_sf, sign_flip_test, welch_interval

if TYPE_CHECKING:
    from harness.record.run_record import RunRecord, ScenarioResult, TaskResult

ALPHA = 0.05


@dataclass(frozen=True)
class NoiseCheck:
    """Whether a change between two sets of repeats stands out of their noise."""

    beyond_noise: bool | None  # None: no noise estimate (one repeat on a side)
    p_value: float | None
    intervals_separate: bool | None
    n_baseline: int
    n_candidate: int
    note: str


def repeat_values(sr: ScenarioResult, metric: str) -> list[float]:
    """The metric's value in each repeat of a point (one value when it has no repeats)."""
    if sr.rigor is not None and sr.rigor.repeats:
        vals = [getattr(r, metric, None) for r in sr.rigor.repeats]
        got = [float(v) for v in vals if v is not None]
        if got:
            return got
    v = getattr(sr, metric, None)
    return [float(v)] if isinstance(v, int | float) and not isinstance(v, bool) else []


def noise_check(baseline: Sequence[float], candidate: Sequence[float], alpha: float = ALPHA) -> NoiseCheck:
    """Whether two sets of repeats differ beyond their noise: Welch's (1 − alpha) interval of
    the difference excludes zero (the same as Welch's test at `alpha`)."""
    nb, nc = len(baseline), len(candidate)
    if nb < 2 or nc < 2:
        return NoiseCheck(
            None,
            None,
            None,
            nb,
            nc,
            f"compared without a noise estimate ({nb} vs {nc} repeats)",
        )
    from harness.stats import intervals_overlap, t_interval

    test = welch_test(baseline, candidate)
    iv = welch_interval(baseline, candidate, 1.0 - alpha)
    overlap = intervals_overlap(t_interval(baseline), t_interval(candidate))
    separate = None if overlap is None else not overlap
    beyond = iv.low > 0 or iv.high < 0 or test.p_value < alpha
    return NoiseCheck(
        beyond,
        test.p_value,
        separate,
        nb,
        nc,
        f"Welch p = {test.p_value:.3g} over {nb} vs {nc} repeats; difference in "
        f"[{iv.low:.4g}, {iv.high:.4g}] at {1 - alpha:.0%}"
        + ("; 95 % intervals separate" if separate else "; 95 % intervals overlap"),
    )


# --- accuracy, paired ---------------------------------------------------------------------


class SampleLogError(ValueError):
    """Two sample logs cannot be paired (different documents, missing metric)."""


@dataclass(frozen=True)
class PairedAccuracy:
    task: str
    metric: str
    filter: str | None
    result: PairedResult
    higher_is_better: bool
    baseline_mean: float = 0.0
    candidate_mean: float = 0.0
    differences: tuple[float, ...] = ()  # per document, candidate − baseline, in document order
    one_sided_worse_p: float = 1.0  # exact (McNemar) or permutation p of "the candidate is worse"

    @property
    def worse(self) -> int:
        """Documents that got worse (lost if higher is better)."""
        return self.result.lost if self.higher_is_better else self.result.gained

    @property
    def better(self) -> int:
        return self.result.gained if self.higher_is_better else self.result.lost

    def describe(self, with_task: bool = True) -> str:
        r = self.result
        kind = "flipped" if r.method == "mcnemar_exact" else "moved"
        test = {"mcnemar_exact": "exact McNemar", "sign_flip": "sign-flip permutation"}.get(
            r.method, "paired bootstrap"
        )
        return (
            (f"{self.task}: " if with_task else "")
            + f"{self.worse} documents {kind} worse, {self.better} better of {r.n} "
            f"(mean {r.mean_diff:+.4f}; {test} p = {r.p_value:.3g})"
        )


def metric_name(task: TaskResult) -> str:
    """The per-sample key of the headline metric (records name it with its filter: `acc,none`)."""
    return task.metric.partition(",")[0]


def headline_filter(task: TaskResult) -> str | None:
    """The lm-eval filter of the task's headline figure (`acc,none` -> `none`)."""
    name, _, flt = task.metric.partition(",")
    if flt:
        return flt
    for key, value in task.metrics.items():
        name, _, flt = key.partition(",")
        if name == task.metric and value is not None and abs(value - task.value) < 1e-12 and flt:
            return flt
    return None


def read_sample_scores(path: Path, metric: str, filter_name: str | None) -> dict[tuple[int, str], float]:
    """Per-document score of `metric` from an lm-eval sample log, keyed by (doc_id, doc_hash)."""
    out: dict[tuple[int, str], float] = {}
    with path.open() as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if filter_name is not None and row.get("filter", filter_name) != filter_name:
                continue
            if metric not in row:
                raise SampleLogError(f"{path}:{line_no}: no {metric!r} in the sample")
            value = row[metric]
            if isinstance(value, list | tuple):  # some metrics log (prediction, reference) pairs
                raise SampleLogError(f"{path}:{line_no}: {metric!r} is not a per-document score")
            # A group's log (mmlu) holds every subtask's rows, whose doc ids repeat: key by subtask too.
            doc = str(row.get("doc_hash", ""))
            if row.get("subtask"):
                doc = f"{row['subtask']}/{doc}"
            out[(int(row["doc_id"]), doc)] = float(value)
    return out


def paired_accuracy(
    task: TaskResult, baseline_log: Path, candidate_log: Path, n_resamples: int = 10000
) -> PairedAccuracy:
    """Compare one task's per-document scores between two runs on the same documents."""
    flt = headline_filter(task)
    b = read_sample_scores(baseline_log, metric_name(task), flt)
    c = read_sample_scores(candidate_log, metric_name(task), flt)
    if b.keys() != c.keys():
        only_b, only_c = len(b.keys() - c.keys()), len(c.keys() - b.keys())
        raise SampleLogError(
            f"{task.name}: the runs evaluated different documents ({only_b} only in the baseline, "
            f"{only_c} only in the candidate)"
        )
    keys = sorted(b)
    xb, xc = [b[k] for k in keys], [c[k] for k in keys]
    binary = all(v in (0.0, 1.0) for v in xb + xc)
    hib = task.higher_is_better is not False  # lm-eval left it unset: accuracy-like, higher is better
    if binary:
        result = mcnemar_exact(xb, xc)
        worse, better = (result.lost, result.gained) if hib else (result.gained, result.lost)
        one_sided = binom_sf(worse, worse + better, 0.5) if worse + better else 1.0
    else:
        result = sign_flip_test(xb, xc, n_resamples=n_resamples)
        one_sided = sign_flip_test(
            xb, xc, n_resamples=n_resamples, alternative="less" if hib else "greater"
        ).p_value
    return PairedAccuracy(
        task.name,
        metric_name(task),
        flt,
        result,
        hib,
        baseline_mean=sum(xb) / len(xb) if xb else 0.0,
        candidate_mean=sum(xc) / len(xc) if xc else 0.0,
        differences=tuple(c - b for b, c in zip(xb, xc, strict=True)),
        one_sided_worse_p=one_sided,
    )


PairedVerdict = Literal["regression", "improvement", "pass"]


def paired_verdict(p: PairedAccuracy, allowed_abs: float, alpha: float = ALPHA) -> tuple[PairedVerdict, str]:
    """Regression: significantly worse (p < alpha) and worse by more than `allowed_abs`."""
    worsening = -p.result.mean_diff if p.higher_is_better else p.result.mean_diff
    significant = p.result.p_value < alpha
    if significant and worsening > allowed_abs:
        return "regression", p.describe()
    if significant and -worsening > allowed_abs:
        return "improvement", p.describe()
    return "pass", p.describe()


# --- validity -------------------------------------------------------------------------------


def invalid_points(
    baseline: RunRecord, candidate: RunRecord, scenarios: Sequence[str] | None = None
) -> list[str]:
    """One line per point flagged invalid in either run (the gate refuses them)."""
    out = []
    for side, record in (("baseline", baseline), ("candidate", candidate)):
        for name, sr in record.performance.items():
            if scenarios is not None and name not in scenarios:
                continue
            if sr.valid is False:
                out.append(
                    f"{side} {name} is invalid: {'; '.join(sr.validity_reasons) or 'no reason recorded'}"
                )
    return out


# --- where the sample logs of a compared record live ------------------------------------------


def samples_dir_of(record_file: Path) -> Path:
    """Sample logs of a record on disk: `samples/` beside a run's `record.json`, or the
    `<name>.samples/` folder beside a baseline file (`harness baseline set` copies them there)."""
    if record_file.is_dir():
        return record_file / "samples"
    if record_file.name == "record.json":
        return record_file.parent / "samples"
    return record_file.with_name(record_file.stem + ".samples")


def copy_samples(run_dir: Path, baseline_file: Path) -> Path | None:
    """Keep a run's sample logs beside its baseline file, so the gate can pair documents later."""
    import shutil

    src = run_dir / "samples"
    if not src.is_dir():
        return None
    dest = samples_dir_of(baseline_file)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
