"""Capacity search: the highest load that still meets an SLO at a target attainment.

Pure and driven from outside: :meth:`CapacitySearch.next_load` proposes a load, the caller
measures it and reports with :meth:`CapacitySearch.record`, until ``next_load`` returns None.

Strategy (GuideLLM 0.8's ``goodput`` profile doubles a concurrency until a level fails, then
bisects; ``vllm bench sweep``'s SLA search bisects a rate): probe ``low``; while probes pass,
double (capped at ``high``); once one fails, bisect between the highest passing and the
lowest failing load, until they are within the tolerance or the probe budget is spent.
Each probe also carries a Wilson interval on its attainment: a probe whose interval straddles
the target is *unresolved* (too few requests to decide), which the result says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.spec.rigor import SearchSpec
from harness.stats import wilson_interval


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
        """Score one measured load against the target attainment."""
        target = self.spec.attainment
        low, high = wilson_interval(good, total)
        passed = total > 0 and good / total >= target
        probe = Probe(
            load=load,
            good=good,
            total=total,
            passed=passed,
            resolved=low >= target or high < target,
            valid=valid,
            point=point,
        )
        self.probes.append(probe)
        return probe

    def _round(self, x: float) -> float:
        return float(math.floor(x)) if self.integer else x

    def _close_enough(self, lo: float, hi: float) -> bool:
        if self.integer:
            return hi - lo <= 1
        return hi - lo <= self.spec.tolerance * lo

    def next_load(self) -> float | None:
        """The next load to probe, or None when the search is over (`stop_reason` says why)."""
        if self.stop_reason is not None:
            return None
        q = self.spec
        if len(self.probes) >= q.max_probes:
            self._stop("max_probes")
            return None
        if not self.probes:
            return self._round(q.low)
        last = self.probes[-1]
        if not last.valid:
            self._stop(f"probe at {last.load:g} was invalid")
            return None
        best, worst = self.best_pass, self.lowest_fail
        if best is None:
            assert worst is not None
            self._stop("fails at the lowest load")
            return None
        if worst is None:
            if best >= q.high:
                self._stop("passes at the highest load")
                return None
            return self._round(min(best * 2.0, q.high))
        if self._close_enough(best, worst):
            self._stop("converged")
            return None
        mid = self._round((best + worst) / 2.0)
        if mid <= best or mid >= worst:
            self._stop("converged")
            return None
        return mid

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason

    @property
    def unresolved(self) -> list[float]:
        return [p.load for p in self.probes if not p.resolved]
