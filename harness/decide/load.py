"""Decision rows from a results folder: the latest ok record of each (model, variant) per hardware.

The only part of :mod:`harness.decide` that reads files: records through :mod:`harness.storage.store`
and lm-eval's per-sample logs beside them (for the paired per-document tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.decide.prices import Price
from harness.decide.rows import DecisionRow, decision_row, row_key
from harness.decide.verdicts import Constraints, Decision, DocScores, decide_all
from harness.record.hardware import hardware_label
from harness.record.run_record import RunRecord


class DecideError(ValueError):
    """Nothing to decide on (no such suite, hardware, or no ok run); the message says what there is."""


def latest_rows(records: Sequence[RunRecord], suite: str, hardware: str | None = None) -> list[RunRecord]:
    """The latest ok record of each (model@variant, hardware label) in ``suite``."""
    latest: dict[tuple[str, str], RunRecord] = {}
    for r in sorted(records, key=lambda r: r.started_at):
        if r.status != "ok" or r.suite.name != suite:
            continue
        hw = hardware_label(r.environment)
        if hardware is not None and hardware.lower() not in hw.lower():
            continue
        latest[(row_key(r), hw)] = r
    return list(latest.values())


def doc_scores(rec: RunRecord, run_dir: Path, row: DecisionRow | None = None) -> DocScores | None:
    """Every task's per-document headline score, keyed (task, doc_id, doc_hash), from the log the
    row's figure came from (idle, or at its load point: ``row.tasks[i].samples_path``); None when
    a task kept no readable sample log (the tests then fall back to the unpaired one)."""
    from harness.rigor.compare import SampleLogError, headline_filter, metric_name, read_sample_scores

    paths = {f.task: f.samples_path for f in row.tasks} if row is not None else {}
    out: dict[tuple[str, int, str], float] = {}
    for t in rec.tasks:
        rel = paths.get(t.name, t.samples_path)
        if rel is None or not (run_dir / rel).is_file():
            return None
        try:
            scores = read_sample_scores(run_dir / rel, metric_name(t), headline_filter(t))
        except (SampleLogError, ValueError, OSError, KeyError):
            return None
        out.update({(t.name, doc, h): v for (doc, h), v in scores.items()})
    return out


def decisions_from_results(
    results: Path,
    suite: str,
    *,
    prices: Sequence[Price] = (),
    constraints: Constraints | None = None,
    reference: str | None = None,
    hardware: str | None = None,
    scenario: str | None = None,
) -> tuple[list[Decision], list[str]]:
    """One decision per hardware label of ``suite`` in ``results``, and the store's problems.

    Raises DecideError when the suite has no ok run (naming the suites that do).
    """
    from harness.storage.store import load_records

    loaded = load_records(results)
    recs = latest_rows(loaded.records, suite, hardware)
    if not recs:
        have = sorted({r.suite.name for r in loaded.records if r.status == "ok"})
        where = f" on hardware matching {hardware!r}" if hardware else ""
        raise DecideError(
            f"no ok run of suite {suite!r}{where} in {results} (suites with ok runs: {', '.join(have) or 'none'})"
        )
    rows: list[DecisionRow] = []
    scores: dict[str, DocScores | None] = {}
    for rec in recs:
        run_dir = results / "runs" / rec.run_id
        row = decision_row(rec, prices, run_dir=run_dir, scenario=scenario)
        rows.append(row)
        scores[row.run_id] = doc_scores(rec, run_dir, row)
    return decide_all(rows, scores, constraints, reference), list(loaded.problems)
