"""Decisions under noise and load: repeats, sweeps, SLOs and goodput, capacity search, validity.

The suite language lives in :mod:`harness.spec.rigor`, the pure expansion of a scenario into
points in :mod:`harness.spec.expand`, the bisection in :mod:`harness.rigor.search`, the
validity rules in :mod:`harness.rigor.validity`, what a record keeps in
:mod:`harness.record.rigor`, and the gate's noise-aware and paired comparisons in
:mod:`harness.rigor.compare`. Statistics are in :mod:`harness.stats`.
"""
