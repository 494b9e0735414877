"""Scoring for ``harness telemetry-check``: pure functions over (t_s, value) series; no NVML, no torch.

Each step of the check turns its readings into :class:`Score` rows: the figure, its unit, the
threshold it is held to, and whether it passed (``None`` for a figure that is reported only).
The exit status is 0 when every scored figure passed, 1 otherwise.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.telemetry.series import counter_delta_mj, integrate_power_j, update_period_s

Series = Sequence[tuple[float, float]]

READ_P99_MAX_MS = 2.0  # 20 Hz x 2 fields x 8 GPUs must fit easily in a 50 ms tick
COUNTER_PERIOD_MAX_S = 0.2  # the confidence rule assumes ~100 ms; much slower needs longer windows
AGREE_FRAC = 0.05  # counter vs integrated power on a steady load
LIMIT_FRAC = 1.05  # matmul power may exceed the enforced limit by this much (averaging, transients)
SQUARE_FRAC = 0.15  # counter vs duty-weighted expectation on a square wave
WINDOW_ERR_FRAC = 0.02  # error a window length must keep (p95) to count as trustworthy
DISTURB_FRAC = 0.02  # decode throughput the sampler may cost at 8 emulated GPUs
SETTLE_MAX_S = 30.0


@dataclass(frozen=True)
class Score:
    """One figure of the check with its threshold; ``passed`` None: reported, not judged."""

    step: str
    name: str
    value: float | str | bool | None
    unit: str
    threshold: str
    passed: bool | None

    def line(self) -> str:
        if isinstance(self.value, float):
            shown = f"{self.value:,.4g}"
        else:
            shown = "n/a" if self.value is None else str(self.value)
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        return f"[{verdict}] {self.step}: {self.name} = {shown}{(' ' + self.unit) if self.unit else ''}  ({self.threshold})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def exit_status(scores: Sequence[Score]) -> int:
    """0 when every judged figure passed (and there was one), else 1."""
    judged = [s.passed for s in scores if s.passed is not None]
    return 0 if judged and all(judged) else 1


def format_scores(scores: Sequence[Score]) -> str:
    failed = sum(1 for s in scores if s.passed is False)
    lines = [s.line() for s in scores]
    lines.append(f"RESULT: {'PASS' if exit_status(scores) == 0 else 'FAIL'} ({failed} figure(s) failed)")
    return "\n".join(lines)


def rel(a: float | None, b: float | None) -> float | None:
    """a / b - 1, or None."""
    return a / b - 1.0 if a is not None and b else None


def within(value: float | None, frac: float) -> bool:
    return value is not None and abs(value) <= frac


# -- read latency and update periods -----------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), q in 0..100."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency_scores(latencies_s: Mapping[str, Sequence[float]]) -> list[Score]:
    """p50 and p99 read latency of each field; p99 must stay under :data:`READ_P99_MAX_MS`."""
    out = []
    for name, values in latencies_s.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        out.append(
            Score("read latency", f"{name} p50", None if p50 is None else p50 * 1e3, "ms", "reported", None)
        )
        out.append(
            Score(
                "read latency",
                f"{name} p99 over {len(values)} calls",
                None if p99 is None else p99 * 1e3,
                "ms",
                f"≤ {READ_P99_MAX_MS:g} ms",
                p99 is not None and p99 * 1e3 <= READ_P99_MAX_MS,
            )
        )
    return out


def change_times(series: Series) -> list[float]:
    """Times at which a polled value differs from the previous poll."""
    return [tb for (_, va), (tb, vb) in zip(series, series[1:], strict=False) if vb != va]


def period_scores(polled: Mapping[str, Series]) -> list[Score]:
    """Update period of each polled field (the counter judged, the power fields reported)."""
    out = []
    for name, series in polled.items():
        period = update_period_s(change_times(series))
        if name == "energy counter":
            out.append(
                Score(
                    "update period",
                    name,
                    None if period is None else period * 1e3,
                    "ms",
                    f"measured and ≤ {COUNTER_PERIOD_MAX_S * 1e3:g} ms (windows under 50 periods are low-confidence)",
                    period is not None and period <= COUNTER_PERIOD_MAX_S,
                )
            )
        else:
            out.append(
                Score("update period", name, None if period is None else period * 1e3, "ms", "reported", None)
            )
    return out


# -- windows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One window measured three ways (joules): counter, integrated instant power, integrated average power."""

    duration_s: float
    counter_j: float | None
    instant_j: float | None
    average_j: float | None

    @property
    def counter_w(self) -> float | None:
        return (
            self.counter_j / self.duration_s if self.counter_j is not None and self.duration_s > 0 else None
        )


def measure(counter_mj: Series, instant_w: Series, average_w: Series, t0: float, t1: float) -> Measured:
    delta, _ = counter_delta_mj(counter_mj, t0, t1)
    return Measured(
        t1 - t0,
        None if delta is None else delta / 1000.0,
        integrate_power_j(instant_w, t0, t1),
        integrate_power_j(average_w, t0, t1),
    )


def settle_time_s(
    power_w: Series, t_start: float, step_s: float = 0.5, tol_frac: float = 0.01, tol_w: float = 1.0
) -> float | None:
    """Seconds after ``t_start`` until two consecutive 1 s mean powers agree (the meter's rule)."""
    if not power_w:
        return None
    t_end = power_w[-1][0]
    t = t_start + 2.0
    while t <= t_end:
        recent = [p for tt, p in power_w if t - 1.0 <= tt <= t]
        before = [p for tt, p in power_w if t - 2.0 <= tt < t - 1.0]
        if recent and before:
            a, b = sum(recent) / len(recent), sum(before) / len(before)
            if abs(a - b) <= max(tol_w, tol_frac * a):
                return t - t_start
        t += step_s
    return None


def settle_scores(settle_s: float | None, idle: Measured) -> list[Score]:
    return [
        Score(
            "settling",
            "power flat after 10 s of matmul",
            settle_s,
            "s",
            f"≤ {SETTLE_MAX_S:g} s (the idle baseline waits for it)",
            settle_s is not None and settle_s <= SETTLE_MAX_S,
        ),
        Score(
            "settling",
            "idle: integrated instant power / counter - 1",
            rel(idle.instant_j, idle.counter_j),
            "",
            f"|x| ≤ {AGREE_FRAC:g}",
            within(rel(idle.instant_j, idle.counter_j), AGREE_FRAC),
        ),
    ]


def level_scores(
    levels: Mapping[str, Measured], idle_w: float | None, power_limit_w: float | None
) -> list[Score]:
    """Each steady load scored three ways, and the ordering idle < decode < matmul ≤ 1.05 × limit."""
    out = []
    for name, m in levels.items():
        out.append(Score("load levels", f"{name}: counter power", m.counter_w, "W", "reported", None))
        for how, value in (("instant", m.instant_j), ("average", m.average_j)):
            r = rel(value, m.counter_j)
            out.append(
                Score(
                    "load levels",
                    f"{name}: integrated {how} power / counter - 1",
                    r,
                    "",
                    f"|x| ≤ {AGREE_FRAC:g}",
                    within(r, AGREE_FRAC),
                )
            )
    decode, mid, matmul = (levels[k].counter_w if k in levels else None for k in ("decode", "mid", "matmul"))
    order = [idle_w, decode, mid, matmul]
    ok = all(v is not None for v in order) and all(a < b for a, b in zip(order, order[1:], strict=False))  # type: ignore[operator]
    if ok and power_limit_w is not None:
        ok = matmul <= LIMIT_FRAC * power_limit_w  # type: ignore[operator]
    shown = " < ".join("n/a" if v is None else f"{v:.0f}" for v in order)
    out.append(
        Score(
            "load levels",
            "idle < decode < mid < matmul ≤ 1.05 × limit",
            f"{shown} W (limit {power_limit_w if power_limit_w is not None else 'n/a'} W)",
            "",
            "strict ordering",
            ok,
        )
    )
    return out


def square_wave_scores(
    period_s: float, duty: float, m: Measured, load_w: float | None, idle_w: float | None
) -> list[Score]:
    """The counter against duty × load + (1 − duty) × idle, and the integral's drift from the counter."""
    expected = duty * load_w + (1 - duty) * idle_w if load_w is not None and idle_w is not None else None
    err = rel(m.counter_w, expected)
    drift = rel(m.instant_j, m.counter_j)
    label = f"{period_s * 1e3:.0f} ms wave"
    return [
        Score(
            "square waves",
            f"{label}: counter / expected - 1",
            err,
            "",
            f"|x| ≤ {SQUARE_FRAC:g}",
            within(err, SQUARE_FRAC),
        ),
        Score(
            "square waves",
            f"{label}: integrated instant power / counter - 1 (part-time sampling)",
            drift,
            "",
            "reported",
            None,
        ),
    ]


def window_errors(
    counter_mj: Series, t0: float, t1: float, lengths_s: Sequence[float]
) -> dict[float, float | None]:
    """p95 relative error of the counter's energy over windows of each length on a steady series.

    The reference is the steady mean power over [t0, t1] times the window length; windows start
    at 37 ms offsets so they fall at every phase of the counter's updates. Each edge takes the
    latest reading at or before it, as a window's synchronous edge read does.
    """
    total, _ = counter_delta_mj(counter_mj, t0, t1)
    if total is None or t1 <= t0:
        return dict.fromkeys(lengths_s)
    mean_mw = total / (t1 - t0)
    pts = sorted(counter_mj)
    out: dict[float, float | None] = {}
    for length in lengths_s:
        errs = []
        start = t0
        while start + length <= t1:
            e0, e1 = _at_or_before(pts, start), _at_or_before(pts, start + length)
            if e0 is not None and e1 is not None:
                errs.append(abs((e1 - e0) / (mean_mw * length) - 1.0))
            start += 0.037
        out[length] = percentile(errs, 95)
    return out


def _at_or_before(points: Series, t: float) -> float | None:
    i = bisect.bisect_right([p[0] for p in points], t)
    return points[i - 1][1] if i > 0 else None


def window_length_scores(errors: Mapping[float, float | None]) -> list[Score]:
    out = [
        Score("window length", f"{length:g} s windows: p95 error", err, "", "reported", None)
        for length, err in errors.items()
    ]
    good = [
        length for length, err in sorted(errors.items()) if err is not None and err <= WINDOW_ERR_FRAC + 1e-9
    ]
    shortest = good[0] if good else None
    out.append(
        Score(
            "window length",
            "shortest window within 2 % (what LOW_CONFIDENCE_S should be)",
            shortest,
            "s",
            "≤ 5 s (the meter's 50-period rule at 100 ms)",
            shortest is not None and shortest <= 5.0,
        )
    )
    return out


def disturbance_scores(
    rate_off: float | None, rate_on: float | None, busy_frac: float | None, sample_hz: float | None
) -> list[Score]:
    drop = -rel(rate_on, rate_off) if rel(rate_on, rate_off) is not None else None  # type: ignore[operator]
    return [
        Score("sampler disturbance", "decode steps/s, sampler off", rate_off, "1/s", "reported", None),
        Score(
            "sampler disturbance",
            "decode steps/s, sampler on (8 emulated GPUs)",
            rate_on,
            "1/s",
            "reported",
            None,
        ),
        Score(
            "sampler disturbance",
            "throughput lost",
            drop,
            "",
            f"≤ {DISTURB_FRAC:g}",
            drop is not None and drop <= DISTURB_FRAC,
        ),
        Score("sampler disturbance", "sampler thread busy", busy_frac, "", "reported", None),
        Score(
            "sampler disturbance",
            "achieved tick rate",
            sample_hz,
            "Hz",
            "≥ 19 Hz",
            sample_hz is not None and sample_hz >= 19.0,
        ),
    ]


def whole_run_scores(counter_mj: Series, instant_w: Series, read_errors: int) -> list[Score]:
    """Counter vs integral over the whole run, a counter that never goes backwards, no read errors."""
    pts = sorted(counter_mj)
    backwards = sum(1 for (_, a), (_, b) in zip(pts, pts[1:], strict=False) if b < a)
    m = (
        measure(pts, instant_w, [], pts[0][0], pts[-1][0])
        if len(pts) >= 2
        else Measured(0.0, None, None, None)
    )
    r = rel(m.instant_j, m.counter_j)
    return [
        Score(
            "whole run",
            "integrated instant power / counter - 1",
            r,
            "",
            f"|x| ≤ {AGREE_FRAC:g}",
            within(r, AGREE_FRAC),
        ),
        Score("whole run", "counter decreases", backwards, "", "0", backwards == 0),
        Score("whole run", "NVML read errors", read_errors, "", "0", read_errors == 0),
    ]


def idle_spread_w(power_w: Series) -> float | None:
    values = [p for _, p in power_w]
    return statistics.pstdev(values) if len(values) >= 2 else None
