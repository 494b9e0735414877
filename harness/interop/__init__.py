"""Other tools' results in, and any run under other tools' definitions out.

* ``harness import KIND PATH...`` reads a ``vllm bench serve`` result, a GuideLLM report, an
  AIPerf export or an lm-eval output folder into a run record (:mod:`harness.interop.store`);
* :mod:`harness.interop.definitions` recomputes a scenario's headline figures from its
  per-request rows under vLLM's, GuideLLM's or AIPerf's published definitions;
* :mod:`harness.interop.method` says what differs in method between an imported run and one
  measured here (the gate prints it).

Every reader fails on a malformed or truncated file with :class:`ImportFormatError`, naming the
file, the field and what was expected; nothing is written for it.
"""

from __future__ import annotations

from harness.interop.common import ImportedRun, ImportedScenario, ImportFormatError

__all__ = ["ImportFormatError", "ImportedRun", "ImportedScenario"]
