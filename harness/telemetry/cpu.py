"""Engine process-tree figures with psutil: CPU seconds and peak resident memory."""

from __future__ import annotations

import threading

import psutil

from harness.telemetry.periodic import PeriodicThread


class ProcessTreeMonitor:
    """Samples the RSS of a process and all its descendants on a background thread.

    CPU seconds are read from the kernel's accounting at window edges, so they are exact
    for processes alive at both edges (children that exit inside a window lose their share).
    """

    def __init__(self, pid: int | None, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self._peak_total = 0
        self._window_peaks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread = PeriodicThread(self._sample, interval_s, "harness-rss-sampler")
        self._procs: dict[int, psutil.Process] = {}

    def _tree(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        try:
            root = self._procs.get(self.pid) or psutil.Process(self.pid)
            self._procs[self.pid] = root
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        # Keep Process objects so cpu_percent-style state and identity survive between samples.
        out = []
        for p in procs:
            out.append(self._procs.setdefault(p.pid, p))
        return out

    def pids(self) -> list[int]:
        """The PIDs of the tree now (root first); empty without a root or once it is gone."""
        return [p.pid for p in self._tree()]

    def rss_bytes(self) -> int | None:
        if self.pid is None:
            return None
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def cpu_seconds(self) -> float | None:
        if self.pid is None:
            return None
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def _sample(self) -> None:
        rss = self.rss_bytes() or 0
        with self._lock:
            self._peak_total = max(self._peak_total, rss)
            for name in self._window_peaks:
                self._window_peaks[name] = max(self._window_peaks[name], rss)

    def start(self) -> None:
        if self.pid is None or self._thread.running:
            return
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def open_window(self, name: str) -> None:
        with self._lock:
            self._window_peaks[name] = 0
        self._sample()

    def close_window(self, name: str) -> int | None:
        self._sample()
        with self._lock:
            peak = self._window_peaks.pop(name, 0)
        return peak if self.pid is not None else None

    @property
    def peak_rss_bytes(self) -> int | None:
        if self.pid is None:
            return None
        with self._lock:
            return self._peak_total
