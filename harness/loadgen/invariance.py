"""Batch-invariance probe: are greedy outputs the same alone and beside a load? (needs no task)

The same greedy prompts (random token ids of fixed length, seeded) are sent one at a time to an
otherwise quiet engine (the reference, concurrency 1), then again one at a time while a load point
runs, so each shares its batch with the load. Outputs are compared token for token: as token ids
where the engine returns them (vLLM's ``return_tokens_as_token_ids``), else as token strings. A
greedy engine that is batch invariant (vLLM's ``VLLM_BATCH_INVARIANT=1`` where supported) gives
identical outputs; one that is not may diverge at some position, and from there on usually differ.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.record.underload import InvarianceProbe

_ID_PREFIX = "token_id:"


@dataclass(frozen=True)
class ProbeOutput:
    tokens: tuple[str, ...]
    as_ids: bool


def probe_prompts(token_ids: Sequence[int], prompts: int, input_tokens: int, seed: int) -> list[list[int]]:
    """`prompts` prompts of `input_tokens` ids drawn from the usable vocabulary (seeded)."""
    rng = np.random.default_rng(seed)
    pool = np.asarray(token_ids)
    return [[int(t) for t in rng.choice(pool, size=input_tokens)] for _ in range(prompts)]


def greedy_output(
    base_url: str, model: str, prompt: list[int], output_tokens: int, timeout_s: float = 600
) -> ProbeOutput:
    """One greedy completion of exactly `output_tokens` tokens, as token ids where the engine gives them."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": output_tokens,
        "min_tokens": output_tokens,
        "ignore_eos": True,
        "temperature": 0.0,
        "logprobs": 0,
        "return_tokens_as_token_ids": True,
    }
    req = urllib.request.Request(
        f"{base_url.rstrip('/')}/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        data = json.loads(resp.read())
    choice = data["choices"][0]
    tokens = tuple((choice.get("logprobs") or {}).get("tokens") or ())
    if not tokens:  # no per-token view: the text is all there is to compare
        return ProbeOutput((choice.get("text", ""),), False)
    return ProbeOutput(tokens, all(t.startswith(_ID_PREFIX) for t in tokens))


def first_divergence(a: Sequence[str], b: Sequence[str]) -> int | None:
    """First position where the two sequences differ (a length difference counts); None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_outputs(
    reference: list[ProbeOutput], loaded: list[ProbeOutput], output_tokens: int, load_concurrency: int | None
) -> InvarianceProbe:
    """The probe's record from the reference outputs and those beside the load, prompt by prompt."""
    div = [first_divergence(r.tokens, x.tokens) for r, x in zip(reference, loaded, strict=True)]
    identical = sum(d is None for d in div)
    seen = [d for d in div if d is not None]
    as_ids = all(o.as_ids for o in [*reference, *loaded])
    return InvarianceProbe(
        prompts=len(div),
        output_tokens=output_tokens,
        identical=identical,
        identical_share=identical / len(div) if div else 0.0,
        first_divergence=div,
        min_first_divergence=min(seen) if seen else None,
        tokens_compared="token_ids" if as_ids else "token_strings",
        load_concurrency=load_concurrency,
    )


class ProbeBesideLoad:
    """Sends the probe prompts one at a time on a thread of its own once the load is running."""

    def __init__(self, base_url: str, model: str, prompts: list[list[int]], output_tokens: int) -> None:
        self.base_url, self.model, self.prompts, self.output_tokens = base_url, model, prompts, output_tokens
        self.load_running = threading.Event()
        self.outputs: list[ProbeOutput] = []
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="invariance-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        self.load_running.wait(600)
        try:
            for p in self.prompts:
                self.outputs.append(greedy_output(self.base_url, self.model, p, self.output_tokens))
        except Exception as exc:  # noqa: BLE001 - the probe's failure is its record's `error`
            self.error = f"{type(exc).__name__}: {exc}"
