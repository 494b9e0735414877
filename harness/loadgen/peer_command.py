"""The ``vllm bench serve`` command line equivalent to a scenario (pure; stored in the record).

Running it against the same server reproduces the scenario with the reference tool: same
input and output lengths (random dataset, no length spread, ``--ignore-eos``), same sampling
(``--temperature 0`` unless the scenario sets one), same load shape, arrival process and seed
(the arrival schedule is then identical, see :mod:`harness.loadgen.arrivals`). The prompts
differ in content, not in length.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.loadgen.client import LoadSpec


def vllm_bench_args(spec: LoadSpec, base_url: str, served_name: str, tokenizer: str | None) -> list[str]:
    """Arguments after ``vllm bench serve`` for ``spec`` against ``base_url``."""
    args = ["--backend", "openai", "--base-url", base_url.rstrip("/"), "--endpoint", "/v1/completions"]
    args += ["--model", tokenizer or served_name, "--served-model-name", served_name]
    if tokenizer:
        args += ["--tokenizer", tokenizer]
    args += [
        "--dataset-name",
        "random",
        "--random-input-len",
        str(spec.load.input_tokens),
        "--random-output-len",
        str(spec.load.output_tokens),
        "--random-range-ratio",
        "0",
        "--num-prompts",
        str(spec.load.num_requests),
        "--ignore-eos",
    ]
    if spec.load.temperature is not None:
        args += ["--temperature", _num(spec.load.temperature)]
    if spec.load.top_p is not None:
        args += ["--top-p", _num(spec.load.top_p)]
    args += ["--seed", str(spec.seed)]
    if spec.load.ramp_up_strategy is not None:
        args += [
            "--ramp-up-strategy",
            spec.load.ramp_up_strategy,
            "--ramp-up-start-rps",
            _num(spec.load.ramp_up_start_rps),
            "--ramp-up-end-rps",
            _num(spec.load.ramp_up_end_rps),
        ]
    else:
        args += ["--request-rate", "inf" if spec.load.request_rate is None else _num(spec.load.request_rate)]
    args += ["--burstiness", _num(spec.load.burstiness)]
    if spec.load.concurrency is not None:
        args += ["--max-concurrency", str(spec.load.concurrency)]
    args += ["--percentile-metrics", "ttft,tpot,itl,e2el"]
    if spec.load.warmup_requests:
        args += ["--num-warmups", str(spec.load.warmup_requests)]
    return args


def vllm_bench_command(spec: LoadSpec, base_url: str, served_name: str, tokenizer: str | None) -> str:
    """The whole command line, shell-quoted."""
    return shlex.join(["vllm", "bench", "serve", *vllm_bench_args(spec, base_url, served_name, tokenizer)])


def _num(x: float | None) -> str:
    if x is None:
        return "None"
    return str(int(x)) if float(x).is_integer() else repr(float(x))
