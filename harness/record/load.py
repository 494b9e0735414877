"""The load of one measured point: the one type the suite resolves to, the load generator sends
and the record stores (``settings.load``).

It lives with the records, the lowest stage that all three read: a suite's ``load`` section
(:class:`harness.spec.scenario.LoadSection`) is this model with sweep lists allowed, the load
generator takes it in :class:`harness.loadgen.client.LoadSpec`, and a record keeps it unchanged.

A record also holds loads the harness did not send (results imported from another tool, records
written before a field was stated), so a figure that may be unknown is nullable here and the
suite's section, which always states what it sends, refuses the null and the zero counts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_REQUEST_TIMEOUT_S = 6 * 60 * 60.0  # vllm bench serve's aiohttp total timeout

RampUp = Literal["linear", "exponential"]


class LoadShape(BaseModel):
    """Lengths, arrivals and sampling of one point's requests (vllm bench serve's arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens: int = Field(ge=0, description="Exact prompt length in the model's tokens.")
    output_tokens: int = Field(ge=0, description="Exact output length (max_tokens with ignore_eos).")
    num_requests: int = Field(ge=0, description="Measured requests (after warm-up).")
    concurrency: int | None = Field(
        default=None, description="Requests in flight at once (closed loop); with a rate, its cap."
    )
    request_rate: float | None = Field(
        default=None,
        description="Arrival rate in requests/s (open loop); `concurrency` caps it; unset: a closed loop.",
    )
    warmup_requests: int = Field(default=1, ge=0, description="Unmeasured requests sent first.")
    burstiness: float = Field(
        default=1.0,
        gt=0,
        description="Gamma shape of the inter-arrival times (vllm bench serve --burstiness): 1.0 is a "
        "Poisson process, below 1 burstier, above 1 more regular (gap CV = 1/sqrt(burstiness)).",
    )
    ramp_up_strategy: RampUp | None = Field(
        default=None,
        description="Raise the arrival rate from `ramp_up_start_rps` to `ramp_up_end_rps` over the "
        "scenario (vllm bench serve --ramp-up-strategy); replaces `request_rate`.",
    )
    # Whole requests/s, as vllm bench serve's --ramp-up-start-rps/--ramp-up-end-rps (type=int).
    ramp_up_start_rps: int | None = Field(
        default=None, ge=1, description="Arrival rate of the first request with a ramp-up, requests/s."
    )
    ramp_up_end_rps: int | None = Field(
        default=None, ge=1, description="Arrival rate of the last request with a ramp-up, requests/s."
    )
    temperature: float | None = Field(
        default=0.0,
        ge=0,
        description="Sampling temperature sent with every request; 0 is greedy; null in a record: not "
        "stated (written before it was, or imported from a file that does not say).",
    )
    top_p: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Nucleus sampling mass sent with every request; unset: server's.",
    )
    request_timeout_s: float | None = Field(
        default=DEFAULT_REQUEST_TIMEOUT_S,
        gt=0,
        description="Seconds one request may take before it counts as failed (vllm bench serve: 6 h). "
        "A hung engine is caught sooner by the engine watchdog (`engine.watchdog_timeout_s`). "
        "Null in a record: not stated.",
    )
    client_workers: int | None = Field(
        default=None,
        ge=1,
        description="Load generator worker processes, each with its own event loop (docs/timing.md); "
        "null: sized from the warm-up so that each stays below half a core, at most one per CPU.",
    )
