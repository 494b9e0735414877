"""Synthetic prompts of exact token lengths, and the seed each scenario draws them with.

Prompts are lists of token ids of exactly ``input_tokens`` length, drawn from the model's
ordinary (non-special) vocabulary, so the server sees the exact input length without a
decode/re-encode round trip (``vllm bench serve``'s random dataset sends text, re-encoded and
truncated to the same length; the engine's work per request is the same).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np


def scenario_seed(suite_seed: int, scenario_name: str) -> int:
    """A scenario's own seed (prompts and arrivals), from the suite's seed and the scenario's name.

    Two scenarios of one suite never share prompts, so none hits another's prefix cache; the
    same suite and name always give the same seed. The value fits ``np.random.seed`` (< 2**32).
    """
    digest = hashlib.sha256(f"{suite_seed}:{scenario_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def make_prompts(count: int, length: int, token_ids: Sequence[int], seed: int) -> list[list[int]]:
    """`count` prompts of exactly `length` token ids drawn uniformly from `token_ids`."""
    rng = np.random.default_rng(seed)
    pool = np.asarray(token_ids)
    return [pool[rng.integers(0, len(pool), size=length)].tolist() for _ in range(count)]


def usable_token_ids(tokenizer_path: str) -> list[int]:
    """Ordinary vocabulary ids of a tokenizer: no special or added tokens, no byte fallbacks."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}) or {})
    vocab = tok.get_vocab()
    ids = [i for t, i in vocab.items() if i not in special and not (t.startswith("<0x") and t.endswith(">"))]
    return sorted(ids)


def token_counter(tokenizer_path: str) -> Callable[[str], int]:
    """Counts a generated text's tokens as ``vllm bench serve`` does when the server sends no
    ``usage``: the tokenizer without special tokens (this may over-count slightly)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False).input_ids)

    return count
