"""Arithmetic on (t_s, value) time series, and the counter's update period; pure, no NVML import.

* :func:`counter_delta_mj`: energy over an interval from energy-counter readings, linearly
  interpolated at edges that fall between readings. A reading lower than an earlier one (a driver
  reload resets the counter) invalidates the figure, and so does a gap in the readings longer than
  ``max_gap_s`` (read errors): a figure across a gap would be an interpolation, not a measurement.
* :func:`integrate_power_j`: the trapezoidal rule over power samples, clipped to the interval.
* :func:`measure_counter_period`: how often the counter really moves (about every 100 ms on
  recent data-centre GPUs), found by polling it; windows shorter than 50 periods cannot be
  trusted to 2 % (:func:`counter_resolution_reason`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

COUNTER_GAP_S = 1.0  # counter readings further apart than this make a window null
RESOLUTION_FRAC = 0.02  # a window is low-confidence where counter period / length exceeds this
ASSUMED_COUNTER_PERIOD_S = 0.1  # NVIDIA's documented ~100 ms, where it could not be measured


def interp(points: Sequence[tuple[float, float]], t: float) -> float | None:
    """Linear interpolation of a time-sorted series at t; None outside its span."""
    if not points or t < points[0][0] or t > points[-1][0]:
        return None
    for (ta, va), (tb, vb) in zip(points, points[1:], strict=False):
        if ta <= t <= tb:
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return points[-1][1]  # a single point, t equal to it


def integrate_power_j(points: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Energy (J) over [t0, t1] from (t_s, power_w) samples by the trapezoidal rule.

    The series is clipped to the interval with linearly interpolated edge values. None when the
    samples do not cover the interval (no guessing beyond the data) or t1 < t0.
    """
    pts = sorted(points)
    if t1 < t0 or len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
        return None
    p0, p1 = interp(pts, t0), interp(pts, t1)
    assert p0 is not None and p1 is not None
    inner = [(t, p) for t, p in pts if t0 < t < t1]
    series = [(t0, p0), *inner, (t1, p1)]
    return sum((tb - ta) * (pa + pb) / 2.0 for (ta, pa), (tb, pb) in zip(series, series[1:], strict=False))


def counter_delta_mj(
    points: Sequence[tuple[float, float]], t0: float, t1: float, max_gap_s: float | None = COUNTER_GAP_S
) -> tuple[float | None, str | None]:
    """Counter increase (mJ) over [t0, t1] from (t_s, counter_mj) samples: (delta, None) or (None, why).

    A decrease anywhere between the edges (the driver reset the counter) invalidates the figure,
    as does a gap between consecutive readings longer than ``max_gap_s`` (None: no gap check).
    """
    pts = sorted(points)
    if t1 < t0:
        return None, "window ends before it starts"
    if len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
        return None, "energy counter readings do not cover the window"
    # Every reading in the window, plus one on either side of it, must be non-decreasing.
    first = max(i for i, (t, _) in enumerate(pts) if t <= t0)
    last = min(i for i, (t, _) in enumerate(pts) if t >= t1)
    span = pts[first : last + 1]
    if any(b[1] < a[1] for a, b in zip(span, span[1:], strict=False)):
        return None, "energy counter went backwards (counter reset or driver reload): figure invalidated"
    gap = max_gap_s_of([t for t, _ in span])
    if max_gap_s is not None and gap > max_gap_s:
        return None, (
            f"energy counter readings {gap:.2f} s apart inside the window (read errors); "
            f"over {max_gap_s:g} s the figure is null, not interpolated"
        )
    e0, e1 = interp(pts, t0), interp(pts, t1)
    assert e0 is not None and e1 is not None
    return e1 - e0, None


def max_gap_s_of(times: Sequence[float]) -> float:
    """Longest gap between consecutive times (0 for fewer than two)."""
    ts = sorted(times)
    return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=0.0)


max_gap_s = max_gap_s_of  # the name the sampler and the GPU check used before this module


def counter_resolution_reason(duration_s: float, period_s: float | None) -> str | None:
    """Why a window of ``duration_s`` is low-confidence given the counter's update period, or None."""
    period = period_s if period_s is not None else ASSUMED_COUNTER_PERIOD_S
    if duration_s <= 0 or period / duration_s > RESOLUTION_FRAC:
        how = "measured" if period_s is not None else "assumed"
        return (
            f"window of {duration_s:.3f} s is under {1 / RESOLUTION_FRAC:.0f} updates of the energy counter "
            f"({how} period {period * 1000:.0f} ms): its edges can be off by {RESOLUTION_FRAC * 100:g} % or more"
        )
    return None


def update_period_s(change_times: Sequence[float]) -> float | None:
    """The median gap between the times a counter was seen to change (None for fewer than 3 changes)."""
    gaps = [b - a for a, b in zip(change_times, change_times[1:], strict=False) if b > a]
    return statistics.median(gaps) if len(gaps) >= 2 else None


def measure_counter_period(
    read_mj: Sequence[Callable[[], int]],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_s: float = 0.001,
    max_s: float = 0.6,
) -> list[float | None]:
    """Update period of each counter in ``read_mj``, polling them all every ``poll_s`` for ``max_s``.

    Precision is about ``poll_s`` (1 ms against a ~100 ms period). A counter that raises, or moves
    fewer than three times (an idle GPU with too little power, or a very slow counter), gets None.
    """
    n = len(read_mj)
    last: list[int | None] = [None] * n
    changes: list[list[float]] = [[] for _ in range(n)]
    dead = [False] * n
    start = clock()
    for _ in range(int(max_s / poll_s) + 1):
        now = clock()
        if now - start > max_s:
            break
        for i, read in enumerate(read_mj):
            if dead[i]:
                continue
            try:
                value = read()
            except Exception:  # noqa: BLE001 - an unreadable counter has no period
                dead[i] = True
                continue
            if last[i] is not None and value != last[i]:
                changes[i].append(now)
            last[i] = value
        if all(dead[i] or len(changes[i]) >= 6 for i in range(n)):
            break
        sleep(poll_s)
    return [None if dead[i] else update_period_s(changes[i]) for i in range(n)]
