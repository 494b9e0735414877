"""Which interval of a scenario an energy figure covers, from per-request timings; pure.

* :func:`measured_interval`: first measured send to last measured completion, the interval whose
  tokens the headline J/token counts (warm-up and prompt building are outside it).
* :func:`steady_state_window`: ML.ENERGY's steady state, from the moment the target number of
  requests have all received their first token to the first completion after which the batch can
  no longer be refilled (no request is left to send), with its own low-confidence reason.
* :func:`tokens_between`: output tokens streamed inside an interval, from chunk times.

Rows are per-request mappings with ``send_s``, ``end_s``, ``first_token_s``, ``output_tokens``
and ``itl_ms`` (seconds after the scenario's first measured send; gaps in milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_FULL_BATCH_FRAC = 0.9  # below this share of the span at full batch, the figure is low-confidence


@dataclass(frozen=True)
class Span:
    """An interval of a scenario, in seconds after its first measured send, and what it holds."""

    start_s: float
    end_s: float
    output_tokens: float
    requests: int  # requests completed inside the span
    low_confidence_reason: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


SteadySpan = Span  # the name the steady state had before it shared the type


def _ok(row: Mapping[str, Any]) -> bool:
    send, end = row.get("send_s"), row.get("end_s")
    return send is not None and end is not None and end >= send


def measured_interval(requests: Sequence[Mapping[str, Any]]) -> tuple[Span | None, str | None]:
    """First measured send to last measured completion, with every output token inside it."""
    rows = [r for r in requests if _ok(r)]
    if not rows:
        return None, "no measured request completed"
    start = min(float(r["send_s"]) for r in rows)
    end = max(float(r["end_s"]) for r in rows)
    if end <= start:
        return None, "measured interval has no duration"
    tokens = float(sum(int(r.get("output_tokens") or 0) for r in rows if r.get("first_token_s") is not None))
    done = sum(1 for r in rows if r.get("first_token_s") is not None)
    return Span(start, end, tokens, done), None


def steady_state_window(
    requests: Sequence[Mapping[str, Any]], target_concurrency: int
) -> tuple[Span | None, str | None]:
    """ML.ENERGY's steady state of a closed-loop scenario, and the tokens streamed in it.

    Start: the first moment ``target_concurrency`` requests are all past their first token at
    once (all decoding: the ramp-up's prefills are over). End: the first completion after the
    last send, after which a finished request can no longer be replaced, so the batch drains.

    Returns:
        (span, None), or (None, why) where the scenario never reaches that state. The span's
        ``low_confidence_reason`` says when fewer than the target were in flight for more than
        10 % of it (the client did not keep the batch full: slow refills, stalls) or fewer than
        ``target_concurrency`` requests completed inside it.
    """
    if target_concurrency < 1:
        return None, "no concurrency target"
    rows = [r for r in requests if _ok(r)]
    decoding: list[tuple[float, int]] = []  # +1 at first token, -1 at completion
    for r in rows:
        first = r.get("first_token_s")
        if first is not None:
            decoding.append((float(first), +1))
            decoding.append((float(r["end_s"]), -1))
    decoding.sort(key=lambda e: (e[0], e[1]))  # at equal times, completions first
    steps = _steps(decoding)
    peak = max((c for _, c in steps), default=0)
    start = next((t for t, c in steps if c >= target_concurrency), None)
    if start is None:
        return None, (
            f"never {target_concurrency} requests past their first token at once (peak {peak}): "
            "no steady state"
        )
    last_send = max(float(r["send_s"]) for r in rows)
    end = min((float(r["end_s"]) for r in rows if float(r["end_s"]) > last_send), default=None)
    if end is None or end <= start:
        return None, (
            "steady state has no duration: the batch can no longer be refilled before it is full "
            "(too few requests for the concurrency)"
        )
    in_flight = _steps(
        sorted(
            [e for r in rows for e in ((float(r["send_s"]), +1), (float(r["end_s"]), -1))],
            key=lambda e: (e[0], e[1]),
        )
    )
    full_s = _time_at_or_above(in_flight, target_concurrency, start, end)
    done = sum(1 for r in rows if start < float(r["end_s"]) <= end)
    why: list[str] = []
    if full_s < MIN_FULL_BATCH_FRAC * (end - start):
        why.append(
            f"fewer than {target_concurrency} requests were in flight for "
            f"{(1 - full_s / (end - start)) * 100:.0f} % of the steady state"
        )
    if done < target_concurrency:
        why.append(f"only {done} request(s) completed inside it (fewer than the concurrency)")
    return Span(start, end, tokens_between(rows, start, end), done, "; ".join(why) or None), None


def _steps(events: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """Step function (time, count from this time on) of sorted +1/-1 events."""
    steps: list[tuple[float, int]] = []
    count = 0
    for t, d in events:
        count += d
        if steps and steps[-1][0] == t:
            steps[-1] = (t, count)
        else:
            steps.append((t, count))
    return steps


def _time_at_or_above(steps: Sequence[tuple[float, int]], level: int, t0: float, t1: float) -> float:
    total = 0.0
    for (ta, c), (tb, _) in zip(steps, [*steps[1:], (t1, 0)], strict=False):
        a, b = max(ta, t0), min(tb, t1)
        if b > a and c >= level:
            total += b - a
    return total


def tokens_between(requests: Sequence[Mapping[str, Any]], t0: float, t1: float) -> float:
    """Output tokens streamed in [t0, t1], from each request's chunk times.

    Chunk times are ``first_token_s`` plus the cumulative ``itl_ms`` gaps; a request's tokens are
    spread evenly over its chunks. Without gaps, tokens are spread evenly from first token to end.
    """
    total = 0.0
    for row in requests:
        first, n = row.get("first_token_s"), row.get("output_tokens") or 0
        if first is None or n <= 0:
            continue
        gaps = [float(g) for g in (row.get("itl_ms") or []) if g is not None]
        if gaps:
            times = [float(first)]
            for g in gaps:
                times.append(times[-1] + g / 1000.0)
            per_chunk = n / len(times)
            total += per_chunk * sum(1 for t in times if t0 <= t <= t1)
        else:
            end = row.get("end_s")
            if end is None or end <= first or n == 1:
                total += n if t0 <= first <= t1 else 0
            else:
                overlap = max(0.0, min(t1, end) - max(t0, first))
                total += n * overlap / (end - first)
    return total
