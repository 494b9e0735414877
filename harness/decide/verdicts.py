"""From decision rows to verdicts: comparability, paired accuracy tests, Pareto sets, a verdict each.

Pure on :class:`~harness.decide.rows.DecisionRow` (plus per-document scores read beforehand).
Directions come from the figures' definitions: accuracy is higher-better as the task says
(lm-eval's ``higher_is_better``), throughput is higher-better and J per token lower-better as
the metric catalogue (:mod:`harness.record.metrics`) says for ``output_throughput`` and
``energy_per_output_token_j``; a cost per token is lower-better because it is a price divided
by a throughput.

Verdicts (one per row, with its reason):

* ``ship``: on the (accuracy, cost) frontier, meets the constraints (accuracy within
  ``max_accuracy_drop`` of the reference, or not significantly below it; a capacity at the
  SLO), and the cheapest such row;
* ``trade-off``: on the frontier but more accurate and dearer than the ship row, or cheaper
  and less accurate than the constraints allow;
* ``dominated``: another row is at least as accurate (no significant loss, paired per document
  where both kept sample logs) and cheaper beyond ``min_effect`` (or as cheap and significantly
  more accurate);
* ``inconclusive``: the data cannot support a call (a capacity that is only a lower bound);
* ``not comparable`` / ``not ranked``: different tasks or documents, too few samples, invalid
  points, another SLO, no capacity; random weights are shown but never ranked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.decide.rows import DecisionRow
from harness.record.metrics import higher_is_better as known_direction
from harness.stats import PairedResult, mcnemar_exact, paired_bootstrap

Verdict = Literal["ship", "trade-off", "dominated", "inconclusive", "not comparable", "not ranked"]
ALPHA = 0.05
DocScores = Mapping[tuple[str, int, str], float]

# Directions, from the one place the project keeps them (the metric catalogue).
THROUGHPUT_HIGHER = known_direction("output_throughput") is True
ENERGY_LOWER = known_direction("energy_per_output_token_j") is False
assert THROUGHPUT_HIGHER and ENERGY_LOWER, "the gate's metric directions changed: revisit the decision rules"


@dataclass(frozen=True)
class Constraints:
    """What the user asks of a row to ship it."""

    max_accuracy_drop: float | None = None  # absolute, vs the reference; None: not significantly below
    slo: dict[str, float] | None = None  # bounds the capacity must have been searched at (ms)
    min_samples: int = 30  # documents over all tasks
    min_effect: float = 0.05  # relative cost/energy difference below which two rows tie
    alpha: float = ALPHA


@dataclass(frozen=True)
class AccuracyTest:
    """A row against another on the same documents (or unpaired where no sample logs)."""

    method: str  # mcnemar_exact, paired_bootstrap, unpaired_z
    diff: float  # row − other, in accuracy
    p_value: float | None
    n: int | None
    better: int | None = None  # documents the row got right and the other wrong
    worse: int | None = None
    note: str | None = None  # where the two rows' accuracies were measured, when not alike

    def significant(self, alpha: float) -> bool:
        return self.p_value is not None and self.p_value < alpha

    def describe(self) -> str:
        tail = f"; {self.note}" if self.note else ""
        if self.method == "unpaired_z":
            p = f"p ≈ {self.p_value:.2g}" if self.p_value is not None else "no stderr"
            return f"{self.diff:+.3f} (unpaired, {p}{tail})"
        test = "McNemar" if self.method == "mcnemar_exact" else "paired bootstrap"
        return f"{self.diff:+.3f} ({test} p = {self.p_value:.2g}, +{self.better}/−{self.worse} of {self.n}{tail})"


@dataclass
class Decided:
    """A row with its decision: the test against the reference, frontier membership, verdict."""

    row: DecisionRow
    verdict: Verdict
    reason: str
    vs_reference: AccuracyTest | None = None
    on_cost_frontier: bool = False
    on_energy_frontier: bool = False
    dominated_by: str | None = None


@dataclass
class Decision:
    """The decision for one suite on one hardware label."""

    suite: str
    hardware: str
    reference: str | None
    cost_axis: str  # "usd_per_mtok" or "tok_s" (no price: within one hardware cost is 1/throughput)
    constraints: Constraints
    rows: list[Decided] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ship(self) -> Decided | None:
        return next((d for d in self.rows if d.verdict == "ship"), None)


def _unpaired(a: DecisionRow, b: DecisionRow) -> AccuracyTest | None:
    if a.accuracy is None or b.accuracy is None:
        return None
    import math

    diff = a.accuracy - b.accuracy
    if a.accuracy_se is None or b.accuracy_se is None:
        return AccuracyTest("unpaired_z", diff, None, None)
    se = math.hypot(a.accuracy_se, b.accuracy_se)
    if se == 0:
        return AccuracyTest("unpaired_z", diff, 1.0 if diff == 0 else 0.0, None)
    z = abs(diff) / se
    p = math.erfc(z / math.sqrt(2))
    return AccuracyTest("unpaired_z", diff, p, None)


def _where(source: str) -> str:
    return "idle" if source == "idle" else f"at load point {source}"


def source_note(a: DecisionRow, b: DecisionRow) -> str | None:
    """Where ``a``'s and ``b``'s task figures were measured, for the tasks where they differ
    (one under load and the other idle, or at two load points); None where alike."""
    theirs = {t.task: t.source for t in b.tasks}
    diffs = [
        f"{t.task} {_where(t.source)} vs {_where(theirs[t.task])}"
        for t in a.tasks
        if t.task in theirs and t.source != theirs[t.task]
    ]
    return f"{a.key} vs {b.key}: " + ", ".join(diffs) if diffs else None


def accuracy_test(
    a: DecisionRow, b: DecisionRow, scores: Mapping[str, DocScores | None]
) -> tuple[AccuracyTest | None, str | None]:
    """``a`` against ``b``: pooled over every task's documents (exact McNemar for 0/1 scores,
    else a paired bootstrap) where both kept sample logs; else the unpaired z test on the two
    means' standard errors. Returns (test, why not comparable).

    Like with like: each row's scores are those its figures came from (idle, or at its load
    point), paired document by document; where one row evaluated a subset at load (a smaller
    ``under_load.limit``), the pair is on the documents both evaluated and says so; where one
    row is under load and the other idle, the test says that too."""
    note = source_note(a, b)
    sa, sb = scores.get(a.run_id), scores.get(b.run_id)
    if sa and sb:
        common = sa.keys() & sb.keys()
        subset = sa.keys() != sb.keys() and common in (sa.keys(), sb.keys())
        if sa.keys() != sb.keys() and not (subset and common):
            return None, f"different documents ({len(sa.keys() ^ sb.keys())} not in both)"
        keys = sorted(common)
        xb, xa = [sb[k] for k in keys], [sa[k] for k in keys]
        binary = all(v in (0.0, 1.0) for v in xa + xb)
        r: PairedResult = mcnemar_exact(xb, xa) if binary else paired_bootstrap(xb, xa, n_resamples=4000)
        if subset:
            # The rows' own means cover different documents: report the pooled difference on
            # the documents both evaluated.
            diff = (sum(xa) - sum(xb)) / len(keys)
            only = f"paired on the {len(keys)} documents both evaluated"
            note = f"{only}; {note}" if note else only
        else:
            # Pooled per document; the row's accuracy is the mean of task means (the same when
            # tasks have equal document counts), so report the difference of the rows' own means.
            diff = (a.accuracy or 0.0) - (b.accuracy or 0.0)
        return AccuracyTest(r.method, diff, r.p_value, r.n, r.gained, r.lost, note), None
    test = _unpaired(a, b)
    if test is not None and note:
        test = dataclasses.replace(test, note=note)
    return test, None


def _documents(row: DecisionRow) -> dict[str, int | None]:
    """Documents per task of the suite (the idle evaluation's; a figure at load may cover a subset,
    which the paired test then restricts to)."""
    return {t.task: t.idle_n if t.idle_n is not None else t.n for t in row.tasks}


def _slo_matches(row: DecisionRow, want: Mapping[str, float]) -> bool:
    have = {k: v for k, v in (row.slo or {}).items() if isinstance(v, int | float)}
    return all(k in have and abs(float(have[k]) - float(v)) < 1e-9 for k, v in want.items())


def _own_problem(row: DecisionRow, c: Constraints) -> tuple[Verdict, str] | None:
    """What keeps a row out of the ranking on its own (before any reference is chosen)."""
    if row.random_weights:
        return "not ranked", "random weights: its accuracy means nothing"
    if row.accuracy is None:
        return "not comparable", "no accuracy"
    if row.n_samples is None:
        return "not comparable", "documents evaluated not recorded"
    if row.n_samples < c.min_samples:
        return "not comparable", f"too few samples (n = {row.n_samples} < {c.min_samples})"
    if row.invalid:
        return "not comparable", "invalid point: " + "; ".join(row.invalid)
    if c.slo and row.basis == "capacity" and not _slo_matches(row, c.slo):
        return "not comparable", f"capacity searched at another SLO ({row.slo or 'none'})"
    return None


def _cost(row: DecisionRow, axis: str) -> float | None:
    if axis == "usd_per_mtok":
        return row.usd_per_mtok
    return 1.0 / row.tok_s if row.tok_s else None  # s per output token: lower is cheaper


def _cost_text(d: DecisionRow, axis: str) -> str:
    if axis == "usd_per_mtok" and d.usd_per_mtok is not None:
        return f"${d.usd_per_mtok:.3g}/Mtok"
    return f"{d.tok_s:.3g} tok/s" if d.tok_s is not None else "no throughput"


def pareto(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """Keys not dominated on (accuracy ↑, cost ↓): no other point at least as good on both and
    better on one. The plain frontier, without noise; :func:`decide` adds the uncertainty."""
    out = set()
    for k, (acc, cost) in points.items():
        if not any(
            (a2 >= acc and c2 <= cost) and (a2 > acc or c2 < cost)
            for k2, (a2, c2) in points.items()
            if k2 != k
        ):
            out.add(k)
    return out


def _dominates(
    x: DecisionRow, b: DecisionRow, axis: str, c: Constraints, test: AccuracyTest | None
) -> tuple[bool, str]:
    """Whether ``x`` dominates ``b`` (``test``: x against b), and why, in words."""
    cx, cb = _cost(x, axis), _cost(b, axis)
    if cx is None or cb is None or test is None:
        return False, ""
    x_worse = test.diff < 0 and test.significant(c.alpha)
    x_better = test.diff > 0 and test.significant(c.alpha)
    cheaper = cx <= cb * (1 - c.min_effect)
    as_cheap = cx <= cb * (1 + c.min_effect)
    if x_worse:
        return False, ""
    if cheaper:
        saving = 1 - cx / cb
        return (
            True,
            f"{x.key} is as accurate ({test.describe()}) and {100 * saving:.0f} % cheaper ({_cost_text(x, axis)})",
        )
    if as_cheap and x_better:
        return True, f"{x.key} is as cheap ({_cost_text(x, axis)}) and more accurate ({test.describe()})"
    return False, ""


def decide(
    rows: Sequence[DecisionRow],
    scores: Mapping[str, DocScores | None] | None = None,
    constraints: Constraints | None = None,
    reference: str | None = None,
) -> Decision:
    """The verdict of every row of one suite on one hardware label.

    ``scores``: per run id, its per-document scores ((task, doc_id, doc_hash) -> score) or None;
    ``reference``: the row key to test against (default: the most accurate comparable row).

    Raises ValueError when the rows mix suites or hardware labels (they are never ranked together).
    """
    c = constraints or Constraints()
    scores = scores or {}
    suites, hws = {r.suite for r in rows}, {r.hardware for r in rows}
    if len(suites) > 1 or len(hws) > 1:
        raise ValueError(
            f"one decision is one suite on one hardware label; got suites {sorted(suites)} and "
            f"hardware {sorted(hws)} (use decide_all to split them)"
        )
    axis = (
        "usd_per_mtok"
        if rows
        and all(r.usd_per_mtok is not None for r in rows if r.tok_s is not None)
        and any(r.usd_per_mtok is not None for r in rows)
        else "tok_s"
    )
    dec = Decision(next(iter(suites), ""), next(iter(hws), ""), None, axis, c)
    if axis == "tok_s":
        dec.notes.append(
            "no price for every row: cost is ranked as 1 / output tok/s at the SLO (the same order as "
            "$/Mtok on one hardware label at any one price)"
        )
    own = {r.key: _own_problem(r, c) for r in rows}
    ranked = [r for r in rows if own[r.key] is None]
    if reference is not None:
        ref = next((r for r in rows if r.key == reference), None)
        if ref is None:
            raise ValueError(
                f"--reference {reference!r}: no such row (rows: {', '.join(r.key for r in rows)})"
            )
        if own[ref.key] is not None:
            raise ValueError(f"--reference {reference!r} cannot be the reference: {own[ref.key][1]}")  # type: ignore[index]
    else:
        ref = max(ranked, key=lambda r: (r.accuracy or 0.0, r.tok_s or 0.0), default=None)
    dec.reference = ref.key if ref else None
    verdicts: dict[str, Decided] = {}
    tests: dict[str, AccuracyTest | None] = {}
    for r in rows:
        if own[r.key] is not None:
            v, why = own[r.key]  # type: ignore[misc]
            verdicts[r.key] = Decided(r, v, why)
            continue
        assert ref is not None
        if r.task_names != ref.task_names:
            verdicts[r.key] = Decided(r, "not comparable", f"different tasks from {ref.key}")
            continue
        if _documents(r) != _documents(ref):
            verdicts[r.key] = Decided(
                r, "not comparable", f"different documents from {ref.key} (counts differ)"
            )
            continue
        test, why_not = (None, None) if r is ref else accuracy_test(r, ref, scores)
        if why_not:
            verdicts[r.key] = Decided(r, "not comparable", f"{why_not} from {ref.key}")
            continue
        tests[r.key] = test
        if _cost(r, axis) is None:
            verdicts[r.key] = Decided(
                r,
                "not comparable",
                (r.usd_reason or "no price")
                if axis == "usd_per_mtok" and r.tok_s
                else (r.tok_s_reason or "no throughput"),
                test,
            )
    pool = [r for r in ranked if r.key not in verdicts]
    # Dominance, with the uncertainty of accuracy (tests) and of cost (min_effect; lower bounds).
    dominated: dict[str, tuple[str, str, float]] = {}  # key -> (by whom, why, the dominator's cost)
    blocked: dict[str, str] = {}
    for b in pool:
        for x in pool:
            if x is b:
                continue
            t, _ = accuracy_test(x, b, scores)
            yes, why = _dominates(x, b, axis, c, t)
            if not yes:
                continue
            if b.bound == "lower":
                blocked[b.key] = (
                    f"{x.key} looks better, but {b.key}'s capacity is only a lower bound ({b.stop_reason})"
                )
                continue
            cost = _cost(x, axis) or 0.0
            if b.key not in dominated or cost < dominated[b.key][2]:  # name the cheapest dominator
                dominated[b.key] = (x.key, why, cost)
    frontier = [r for r in pool if r.key not in dominated and r.key not in blocked]
    energy_pts = {r.key: (r.accuracy or 0.0, r.j_per_token) for r in pool if r.j_per_token is not None}
    on_energy = pareto({k: (a, j) for k, (a, j) in energy_pts.items() if j is not None})

    def meets(r: DecisionRow) -> str | None:
        """Why r misses the user's constraints (None: it meets them)."""
        t = tests.get(r.key)
        if r.basis == "capacity" and r.capacity is None:
            return "no load met the SLO"
        if ref is None or r is ref or t is None:
            return None
        if c.max_accuracy_drop is not None:
            drop = -t.diff
            return (
                None
                if drop <= c.max_accuracy_drop
                else f"accuracy {drop:.3f} below {ref.key} (allowed {c.max_accuracy_drop})"
            )
        return (
            f"significantly less accurate than {ref.key} ({t.describe()})"
            if t.diff < 0 and t.significant(c.alpha)
            else None
        )

    ok = sorted((r for r in frontier if meets(r) is None), key=lambda r: _cost(r, axis) or 0.0)
    ship = ok[0] if ok else None
    for r in pool:
        t = tests.get(r.key)
        if r.key in dominated:
            by_key, why, _ = dominated[r.key]
            verdicts[r.key] = Decided(r, "dominated", why, t, dominated_by=by_key)
        elif r.key in blocked:
            verdicts[r.key] = Decided(r, "inconclusive", blocked[r.key], t)
        elif r is ship:
            scope = "" if r.basis == "capacity" else f" (at {r.basis}: not a capacity at an SLO)"
            if r.bound == "lower":
                scope += (
                    f"; its capacity is only a lower bound ({r.stop_reason}), so its cost is at most this"
                )
            verdicts[r.key] = Decided(
                r,
                "ship",
                f"cheapest on the frontier that meets the constraints ({_cost_text(r, axis)}){scope}",
                t,
                True,
            )
        else:
            miss = meets(r)
            if ship is None:
                why = f"on the frontier, but {miss}" if miss else "on the frontier"
            elif miss:
                why = f"cheaper than {ship.key} ({_cost_text(r, axis)}), but {miss}"
            else:
                vs_ship, _ = accuracy_test(r, ship, scores)
                rel = (_cost(r, axis) or 0.0) / (_cost(ship, axis) or 1.0) - 1
                if abs(rel) < c.min_effect and not (vs_ship is not None and vs_ship.significant(c.alpha)):
                    why = (
                        f"ties with {ship.key}: cost within {100 * c.min_effect:.0f} % ({100 * rel:+.1f} %) and "
                        "accuracy not significantly different; repeats or a finer capacity search would separate them"
                    )
                    verdicts[r.key] = Decided(r, "inconclusive", why, t, True)
                    continue
                gain = (r.accuracy or 0.0) - (ship.accuracy or 0.0)
                why = f"{gain:+.3f} accuracy over {ship.key} for {100 * rel:+.0f} % cost"
            verdicts[r.key] = Decided(r, "trade-off", why, t, True)
    for key in on_energy:
        verdicts[key].on_energy_frontier = True
    dec.rows = sorted(
        (verdicts[r.key] for r in rows),
        key=lambda d: (_ORDER[d.verdict], -(d.row.accuracy or -1.0), d.row.key),
    )
    return dec


_ORDER: dict[str, int] = {
    "ship": 0, "trade-off": 2, "inconclusive": 3, "dominated": 4, "not comparable": 5, "not ranked": 6,
}  # fmt: skip


def decide_all(
    rows: Sequence[DecisionRow],
    scores: Mapping[str, DocScores | None] | None = None,
    constraints: Constraints | None = None,
    reference: str | None = None,
) -> list[Decision]:
    """One :func:`decide` per (suite, hardware label): rows of two are never ranked together."""
    groups: dict[tuple[str, str], list[DecisionRow]] = {}
    for r in rows:
        groups.setdefault((r.suite, r.hardware), []).append(r)
    return [
        decide(g, scores, constraints, reference if any(r.key == reference for r in g) else None)
        for _, g in sorted(groups.items())
    ]
