"""From figures to a decision: which (model, variant) to ship on one suite and hardware label.

* :mod:`~harness.decide.prices`: the user's prices ($/GPU-hour or $/node-hour) and $/Mtok;
* :mod:`~harness.decide.rows`: one row per (model, variant) from its latest ok record
  (accuracy with n and interval, capacity at the SLO and its bound, tok/s per GPU, J/token,
  J per correct answer, $/Mtok), every missing figure with its reason;
* :mod:`~harness.decide.verdicts`: paired tests against a reference, Pareto sets and a verdict
  per row (ship, trade-off, dominated, inconclusive, not comparable, not ranked);
* :mod:`~harness.decide.techniques`: a technique variant against its baseline in the same words;
* :mod:`~harness.decide.load` reads a results folder; :mod:`~harness.decide.render` prints.

See docs/decide.md.
"""
