"""Capacity search: the highest load that still meets an SLO at a target attainment.

Pure and driven from outside: :meth:`CapacitySearch.next_load` proposes a load, the caller
measures it and reports with :meth:`CapacitySearch.record`, until ``next_load`` returns None.

Strategy (after GuideLLM's ``goodput`` profile, which searches concurrency, doubles until a
level fails and halves toward 1 when the first level fails): probe ``low``; while probes pass,
double (capped at ``high``); if the first probe fails, halve down to ``floor``; once a pass and a
fail bracket the capacity, bisect until they are within the tolerance or the probe budget
(by default, enough probes to get there from the defaults) is spent.

A probe **passes** only when the Wilson 95 % lower bound of its attainment reaches the target
(a point estimate passes a 0.98 load at target 0.99 in 40 % of 100-request probes); it is a
**resolved fail** when the upper bound is below the target, and **unresolved** in between
(treated as not passing). When the fail next to the capacity is unresolved, the search narrows
the gap up to the nearest resolved fail. The result says ``bound: resolved`` only when a pass
and a resolved fail lie within the tolerance; any other stop (budget, the highest load passing,
an unresolved or invalid probe) makes the capacity a ``lower`` bound, said in ``stop_reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from harness.spec.rigor import SearchSpec, min_requests_to_pass
from harness.stats import wilson_interval

Bound = Literal["lower", "resolved"]


@dataclass(frozen=True)
class Probe:
    """One measured load: its attainment, whether it passed, and whether it was decisive."""

    load: float
    good: int
    total: int
    passed: bool
    resolved: bool
    valid: bool = True
    point: str | None = None
    failed_resolved: bool = False  # the Wilson upper bound is below the target: surely failing

    @property
    def attainment(self) -> float:
        return self.good / self.total if self.total else 0.0


@dataclass
class CapacitySearch:
    spec: SearchSpec
    probes: list[Probe] = field(default_factory=list)
    stop_reason: str | None = None

    @property
    def integer(self) -> bool:
        return self.spec.over == "concurrency"

    @property
    def best_pass(self) -> float | None:
        loads = [p.load for p in self.probes if p.passed and p.valid]
        return max(loads) if loads else None

    @property
    def lowest_fail(self) -> float | None:
        loads = [p.load for p in self.probes if not p.passed and p.valid]
        return min(loads) if loads else None

    def record(
        self, load: float, good: int, total: int, valid: bool = True, point: str | None = None
    ) -> Probe:
        """Score one measured load against the target attainment (Wilson 95 % bounds)."""
        target = self.spec.attainment
        low, high = wilson_interval(good, total)
        passed = total > 0 and low >= target
        probe = Probe(
            load=load,
            good=good,
            total=total,
            passed=passed,
            resolved=low >= target or high < target,
            valid=valid,
            point=point,
            failed_resolved=total > 0 and high < target,
        )
        self.probes.append(probe)
        return probe

    @property
    def max_probes(self) -> int:
        """The budget: the spec's, or enough to double to `high`, halve to `floor` and bisect to
        the tolerance from the start (:meth:`SearchSpec.probes_needed`)."""
        return self.spec.max_probes if self.spec.max_probes is not None else self.spec.probes_needed()

    @property
    def bound(self) -> Bound | None:
        """``resolved``: converged between a pass and a resolved fail; ``lower``: any other stop
        with a pass; None: nothing passed."""
        best = self.best_pass
        if best is None:
            return None
        sure = self.lowest_resolved_fail
        if self.stop_reason != "converged" or sure is None:
            return "lower"
        return "resolved" if self._close_enough(best, sure) or self._adjacent(best, sure) else "lower"

    def _adjacent(self, lo: float, hi: float) -> bool:
        return self.integer and hi - lo <= 1

    def _round(self, x: float) -> float:
        return float(math.floor(x)) if self.integer else x

    def _close_enough(self, lo: float, hi: float) -> bool:
        if self.integer:
            return hi - lo <= max(1.0, math.floor(self.spec.tolerance * lo))
        return hi - lo <= self.spec.tolerance * lo

    def next_load(self) -> float | None:
        """The next load to probe, or None when the search is over (`stop_reason` says why)."""
        if self.stop_reason is not None:
            return None
        q = self.spec
        if not self.probes:
            return self._round(q.low)
        last = self.probes[-1]
        if not last.valid:
            self._stop(f"probe at {last.load:g} was invalid")
            return None
        need = min_requests_to_pass(q.attainment)
        if not last.passed and need is not None and last.total < need:
            self._stop(
                f"probes of {last.total} requests cannot show attainment ≥ {q.attainment:g} at 95 % "
                f"(need ≥ {need} requests each)"
            )
            return None
        if len(self.probes) >= self.max_probes:
            self._stop("max_probes")
            return None
        best, worst = self.best_pass, self.lowest_fail
        floor = self.floor
        if best is None:
            assert worst is not None
            if worst <= floor:
                self._stop("fails at the lowest load")
                return None
            nxt = self._round(max(floor, worst / 2.0))
            if nxt >= worst:
                self._stop("fails at the lowest load")
                return None
            return nxt
        if worst is None:
            if best >= q.high:
                self._stop("passes at the highest load")
                return None
            return self._round(min(best * 2.0, q.high))
        sure = self.lowest_resolved_fail
        if sure is not None and self._close_enough(best, sure):
            self._stop("converged")
            return None
        if sure is None:
            # Nothing above the capacity surely fails yet: step above the highest unresolved load.
            top = max(p.load for p in self.probes if p.valid and not p.passed)
            if top >= q.high:
                self._stop("unresolved at the highest load: no load surely fails")
                return None
            nxt = self._round(min(q.high, max(top * (1.0 + q.tolerance), top + (1 if self.integer else 0))))
            if nxt <= top:
                self._stop("converged on an unresolved probe: no load above the capacity surely fails")
                return None
            return nxt
        # Bisect the widest gap between the pass, the unresolved loads and the sure fail.
        inside = sorted({p.load for p in self.probes if p.valid and not p.passed and best < p.load < sure})
        points = [best, *inside, sure]
        gaps = sorted(zip(points, points[1:], strict=False), key=lambda g: g[1] - g[0], reverse=True)
        for lo, hi in gaps:
            mid = self._round((lo + hi) / 2.0)
            if lo < mid < hi:
                return mid
        self._stop("converged on an unresolved probe")
        return None

    @property
    def lowest_resolved_fail(self) -> float | None:
        loads = [p.load for p in self.probes if p.failed_resolved and p.valid]
        return min(loads) if loads else None

    @property
    def floor(self) -> float:
        q = self.spec
        if q.floor is not None:
            return q.floor
        return 1.0 if self.integer else min(q.low, q.low / 16.0)

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason

    @property
    def unresolved(self) -> list[float]:
        return [p.load for p in self.probes if not p.resolved]
