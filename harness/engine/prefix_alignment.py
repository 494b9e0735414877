"""The token granularities of vLLM's prefix cache: ``hash_block_size`` and ``cache_hit_alignment_tokens``.

vLLM 0.32 hashes prompts every ``hash_block_size`` tokens and lands prefix-cache hits on
``cache_hit_alignment_tokens``; both can differ from ``block_size`` in a hybrid model (several
KV-cache groups: the hash block is the GCD of the groups' block sizes, or ``--prefix-match-unit``;
hits land on it only with partial hash hits, else on the scheduler block, the groups' LCM).
See ``resolve_kv_cache_block_sizes`` and ``resolve_cache_hit_alignment_tokens`` in
``vllm/v1/core/kv_cache_utils.py``.

The engine core resolves them in its own process; the API server's ``vllm:cache_config_info``
carries both labels but, in 0.32's default multi-process mode, as ``"None"`` (the frontend's
copy is never told: tests/data/vllm032_metrics_ngram.txt). So:

1. integer labels on ``cache_config_info`` are used as they are (an in-process engine, a later vLLM);
2. else vLLM's rule is applied to what the server does say: one KV-cache group (no "kv cache
   group sizes" line in the engine log) means both equal ``block_size``; several groups give the
   hash block (GCD, or ``prefix_match_unit``), and hits are taken to land on the scheduler block
   (LCM, the conservative case: whether partial hash hits are on is not reported). The source
   says which, so an inference is never passed off as a reading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_GROUP_SIZES = re.compile(r"kv cache group sizes \(([\d,\s]+)\)")
_LCM = re.compile(r"kv lcm block sizes (\d+)")


@dataclass(frozen=True)
class PrefixAlignment:
    hash_block_size: int | None
    cache_hit_alignment_tokens: int | None
    source: str | None
    reason: str | None = None  # why the figures are null, where they are


def _int(labels: dict[str, str], key: str) -> int | None:
    try:
        return int(labels[key])
    except (KeyError, ValueError):
        return None


def log_group_block_sizes(log_text: str | None) -> tuple[list[int] | None, int | None]:
    """The KV-cache groups' block sizes and their LCM, from the engine log (hybrid models only)."""
    sizes: list[int] | None = None
    lcm: int | None = None
    for line in (log_text or "").splitlines():
        if m := _GROUP_SIZES.search(line):
            sizes = [int(x) for x in m.group(1).replace(" ", "").split(",") if x]
        if m := _LCM.search(line):
            lcm = int(m.group(1))
    return sizes, lcm


def prefix_alignment(labels: dict[str, str] | None, log_text: str | None) -> PrefixAlignment:
    """The two granularities from ``cache_config_info``'s labels and the engine log (see the module)."""
    if labels is None:
        return PrefixAlignment(None, None, None, "no vllm:cache_config_info metric")
    hash_bs, align = _int(labels, "hash_block_size"), _int(labels, "cache_hit_alignment_tokens")
    if hash_bs is not None and align is not None:
        return PrefixAlignment(hash_bs, align, "/metrics cache_config_info")
    block = _int(labels, "block_size")
    sizes, lcm = log_group_block_sizes(log_text)
    if sizes and len(sizes) > 1:
        unit = _int(labels, "prefix_match_unit")
        hash_bs = unit if unit is not None else math.gcd(*sizes)
        sched = lcm if lcm is not None else math.lcm(*sizes)
        return PrefixAlignment(
            hash_bs,
            sched,
            f"vLLM 0.32's rule on the engine log's KV-cache groups {tuple(sizes)} (its /metrics says None): "
            f"hash block {'prefix_match_unit' if unit is not None else 'GCD'}, hits on the scheduler "
            "block (LCM; partial hash hits would land them on the hash block, which vLLM does not report)",
        )
    if block is None:
        return PrefixAlignment(None, None, None, "cache_config_info has no block_size yet")
    where = "the engine log has no 'kv cache group sizes' line" if log_text else "no engine log: assumed"
    return PrefixAlignment(
        block,
        block,
        f"vLLM 0.32's rule for one KV-cache group ({where}): both equal block_size; its /metrics says None",
    )
