"""The efficiency claims about the model families, held against what this harness measures.

``registry.yaml`` lists each claim (statement, source, the runs that test it, the decision rule);
:mod:`~harness.claims.spec` is its schema, :mod:`~harness.claims.rules` the rules (pure),
:mod:`~harness.claims.evidence` reads the figures from records, :mod:`~harness.claims.evaluate`
puts them together and :mod:`~harness.claims.cli` is ``harness claims``. docs/claims.md says more.
"""

from __future__ import annotations
