"""Polling the engine's ``/metrics`` during a run: one background thread, windows per phase.

The parsing it relies on is pure and lives in :mod:`harness.engine.vllm_metrics` (one scrape)
and :mod:`harness.engine.server_metrics` (the series).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from harness.engine.server_metrics import ServerSample, server_sample, summarize_window
from harness.engine.vllm_metrics import engine_memory, kv_cache_usage, kv_cache_usage_frac
from harness.record.run_record import EngineMemory, KvCacheUsage, ServerWindow
from harness.telemetry.periodic import PeriodicThread


def _fetch(url: str, timeout_s: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - the engine's own URL
        return resp.read().decode("utf-8", "replace")


class MetricsPoller:
    """Polls an engine's ``/metrics`` on a thread; KV-cache usage per window.

    Args:
        base_url: the engine's base URL (``http://host:port``, with or without ``/v1``).
        interval_s: seconds between polls.
        fetch: ``url -> page text`` (tests pass a fake).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        base_url: str,
        interval_s: float = 0.5,
        fetch: Callable[[str], str] = _fetch,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.base_url = base_url
        self.interval_s = interval_s
        self.fetch = fetch
        self.clock = clock
        self.polls: list[tuple[float, float]] = []
        self.errors = 0
        self.last_error: str | None = None
        self.last_text: str | None = None
        self.origin_s = clock()  # time zero of the series written to server_metrics.parquet
        self.series: list[ServerSample] = []  # every poll, for telemetry/server_metrics.parquet
        self._windows: dict[str, float] = {}
        self._thread = PeriodicThread(self.poll_once, interval_s, "harness-metrics-poller", immediate=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        base = base[: -len("/v1")] if base.endswith("/v1") else base
        return f"{base}/metrics"

    def poll_once(self) -> float | None:
        """Fetch /metrics now; store and return the KV-cache usage fraction."""
        try:
            text = self.fetch(self.url)
        except Exception as exc:  # an unreachable engine is a gap in the series, not a crash
            self.errors += 1
            self.last_error = repr(exc)
            return None

        now = self.clock()
        frac = kv_cache_usage_frac(text)
        sample = server_sample(text, now)
        with self._lock:
            self.last_text = text
            self.series.append(sample)
            if frac is not None:
                self.polls.append((now, frac))
        return frac

    def server_window(
        self,
        t0_s: float,
        t1_s: float,
        implied_prefix_hit_rate: float | None = None,
        dispatch_s: float | None = None,
    ) -> ServerWindow:
        """The server's queues, KV use and cache counters between two clock readings; the window's
        times (and a scenario's start of dispatch) come back on the series' clock (from :attr:`origin_s`)."""

        with self._lock:
            series = list(self.series)
        window = summarize_window(series, t0_s, t1_s, implied_prefix_hit_rate)
        update: dict[str, object] = {
            "start_s": t0_s - self.origin_s,
            "end_s": t1_s - self.origin_s,
            "dispatch_s": None if dispatch_s is None else dispatch_s - self.origin_s,
        }
        if window.polls == 0 and self.errors:
            update["reason"] = f"{window.reason} ({self.errors} failed polls, last: {self.last_error})"
        return window.model_copy(update=update)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def begin_window(self, name: str) -> None:
        self._windows[name] = self.clock()

    def end_window(self, name: str, capacity_tokens: int | None = None) -> KvCacheUsage:
        """Peak KV-cache usage between :meth:`begin_window` and now."""
        t0, t1 = self._windows.pop(name), self.clock()
        with self._lock:
            fracs = [f for t, f in self.polls if t0 <= t <= t1]
        why = None
        if not fracs:
            why = "no /metrics poll inside the phase"
            if self.errors:
                why += f" ({self.errors} failed polls, last: {self.last_error})"
            elif self.last_text is not None and kv_cache_usage_frac(self.last_text) is None:
                why = "the engine's /metrics has no KV-cache usage gauge"
        return kv_cache_usage(fracs, capacity_tokens, why)


def measure_engine_memory(
    log_path: Path,
    poller: MetricsPoller,
    model_path: Path,
    nvml_memory_used_bytes: int | None,
    nvml_memory_total_bytes: int | None = None,
    nvml_reason: str | None = None,
) -> EngineMemory:
    """A running engine's memory figures: its log so far, ``/metrics`` polled now, the checkpoint.

    ``model_path`` counts only when it is a local folder (a Hub id is not); NVML's figure is
    kept beside the others, since vLLM pre-allocates most of the card for its KV cache.
    """
    poller.poll_once()
    return engine_memory(
        log_text=log_path.read_text(errors="replace") if log_path.exists() else None,
        metrics_text=poller.last_text,
        checkpoint=model_path if model_path.is_dir() else None,
        nvml_memory_used_bytes=nvml_memory_used_bytes,
        nvml_memory_total_bytes=nvml_memory_total_bytes,
        nvml_reason=nvml_reason,
    )
