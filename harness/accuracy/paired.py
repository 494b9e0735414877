"""Paired comparison of one task's sample logs: the same documents idle and at load (pure).

Per document the headline metric is read from each lm-eval sample log (the rows of the headline's
filter), keyed by ``(doc_id, doc_hash)`` so that only the same documents pair. Then:

* 0/1 metrics: documents flipped better and worse, and the exact McNemar p
  (:func:`harness.stats.mcnemar_exact`);
* other metrics: documents that rose and fell, and a paired sign-flip permutation test of the
  mean difference (exact over every sign pattern up to 2^16 patterns, else 20 000 seeded draws);
* "answers changed": the chosen choice (argmax log-likelihood) of a multiple-choice document, or
  the filtered answer of a generative one, differs, whatever the metric did;
* generative tasks: the share of documents whose raw generated text changed at all;
* log-likelihood tasks: the largest |load - idle| log-likelihood over every continuation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.record.underload import PairedFigures
from harness.stats import mcnemar_exact

_EXACT_MAX_NONZERO = 16
_DRAWS = 20000


class PairingError(ValueError):
    """Two sample logs that cannot be paired (no common document, missing metric)."""


@dataclass(frozen=True)
class _Doc:
    score: float
    answer: Any
    text: tuple[str, ...] | None  # raw generated texts (generative)
    logliks: tuple[float, ...] | None  # one per continuation (log-likelihood)


def read_docs(path: Path, metric: str, filter_name: str | None) -> tuple[dict[tuple[int, str], _Doc], str]:
    """Per-document score, answer and raw outputs of one sample log, and the task's output type."""
    docs: dict[tuple[int, str], _Doc] = {}
    kind = "loglikelihood"
    with path.open() as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if filter_name is not None and row.get("filter", filter_name) != filter_name:
                continue
            if metric not in row or isinstance(row[metric], list | dict):
                raise PairingError(f"{path}:{line_no}: no per-document {metric!r} in the sample")
            args = row.get("arguments") or []
            generative = bool(args) and isinstance(args[0], list | tuple) and isinstance(args[0][-1], dict)
            filtered = row.get("filtered_resps") or []
            if generative:
                kind = "generate_until"
                texts = tuple(
                    str(r[0]) if isinstance(r, list) and r else str(r) for r in row.get("resps") or []
                )
                doc = _Doc(float(row[metric]), json.dumps(filtered, sort_keys=True), texts, None)
            else:
                lls = tuple(float(r[0]) if isinstance(r, list | tuple) else float(r) for r in filtered)
                answer = int(np.argmax(lls)) if lls else None
                doc = _Doc(float(row[metric]), answer, None, lls)
            docs[(int(row["doc_id"]), str(row.get("doc_hash", "")))] = doc
    return docs, kind


def sign_flip_test(diffs: list[float], seed: int = 0) -> float:
    """Two-sided p of a paired sign-flip permutation test of mean(diffs) = 0.

    Under no change each difference is as likely with either sign; p is the share of sign
    patterns whose |mean| is at least the observed one (exact when few differences are nonzero).
    """
    d = np.asarray([x for x in diffs if x != 0.0], dtype=float)
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    if d.size <= _EXACT_MAX_NONZERO:
        patterns = ((np.arange(1 << d.size)[:, None] >> np.arange(d.size)) & 1) * 2 - 1
        sums = np.abs(patterns @ d)
        return float(np.mean(sums >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(_DRAWS, d.size))
    sums = np.abs(signs @ d)
    return float((np.sum(sums >= observed - 1e-12) + 1) / (_DRAWS + 1))


def compare_logs(
    idle_log: Path, load_log: Path, metric: str, filter_name: str | None, higher_is_better: bool = True
) -> PairedFigures:
    """The paired figures of one task: `load_log` against `idle_log` on their common documents."""
    idle, kind = read_docs(idle_log, metric, filter_name)
    load, _ = read_docs(load_log, metric, filter_name)
    keys = sorted(idle.keys() & load.keys())
    if not keys:
        raise PairingError(
            f"{load_log.name}: no document in common with the idle log ({len(idle)} idle, {len(load)} at load)"
        )
    xb = [idle[k].score for k in keys]
    xc = [load[k].score for k in keys]
    binary = all(v in (0.0, 1.0) for v in xb + xc)
    if binary:
        r = mcnemar_exact(xb, xc)
        rose, fell, p, method = r.gained, r.lost, r.p_value, "mcnemar_exact"
    else:
        diffs = [c - b for b, c in zip(xb, xc, strict=True)]
        rose, fell = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
        p, method = sign_flip_test(diffs), "sign_flip_permutation"
    changed = sum(idle[k].answer != load[k].answer for k in keys)
    text_share = None
    max_dll = None
    if kind == "generate_until":
        text_share = sum(idle[k].text != load[k].text for k in keys) / len(keys)
    else:
        deltas = [
            abs(a - b)
            for k in keys
            for a, b in zip(idle[k].logliks or (), load[k].logliks or (), strict=False)
            if math.isfinite(a) and math.isfinite(b)
        ]
        max_dll = max(deltas) if deltas else None
    return PairedFigures(
        n=len(keys),
        metric=metric,
        idle_value=sum(xb) / len(xb),
        load_value=sum(xc) / len(xc),
        flips_better=rose if higher_is_better else fell,
        flips_worse=fell if higher_is_better else rose,
        p_value=p,
        method=method,  # type: ignore[arg-type]
        answers_changed_share=changed / len(keys),
        generated_text_changed_share=text_share,
        max_abs_delta_loglik=max_dll,
        output_type=kind,
    )
