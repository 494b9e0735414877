"""A real two-node Ray cluster on loopback only, for tests and benchmarks on this machine.

Ray 2.60 binds to the machine's outward address unless told otherwise, even with
``--node-ip-address 127.0.0.1``; with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the environment
of ``ray start`` and of the driver as well, every listener is on 127.0.0.1. The head and the
worker node are separate ``ray start`` processes, CPU only, with a small object store and their
own temporary folder (which names every process of the cluster on its command line).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 100 * 10**6


# With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (what keeps every address on loopback), `ray start
# --address` refuses to add a node ("multi-node clusters are not supported on Windows and OSX").
# This runs the same `ray start` with that one check lifted: only the CLI module sees the flag
# as true, so the IP resolution in ray._private.services still returns 127.0.0.1.
_WORKER_NODE_SHIM = """
import sys, types
import ray._private.ray_constants as real
import ray.scripts.scripts as scripts
class Constants(types.ModuleType):
    def __getattr__(self, name):
        return getattr(real, name)
shim = Constants("ray_constants")
shim.ENABLE_RAY_CLUSTER = True
scripts.ray_constants = shim
sys.argv[0] = "ray"
sys.exit(scripts.main())
"""


def loopback_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for `ray start` and the driver: loopback only, this checkout's code first."""
    env = dict(os.environ)
    env.update(
        {
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "HARNESS_CPU_KVCACHE_GIB": os.environ.get("HARNESS_CPU_KVCACHE_GIB", "1"),
        }
    )
    env.update(extra or {})
    return env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[-8:])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LoopbackCluster:
    """Head + one worker node, 1 CPU each (so two cells run on two nodes at once)."""

    cpus_per_node: int = 1
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="hr-", dir="/tmp"))
    port: int = field(default_factory=_free_port)
    env: dict[str, str] = field(default_factory=loopback_env)
    seen_pids: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _common(self) -> list[str]:
        return [
            "--node-ip-address",
            "127.0.0.1",
            f"--num-cpus={self.cpus_per_node}",
            "--num-gpus=0",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            "--disable-usage-stats",
        ]

    def start(self) -> None:
        head = [RAY, "start", "--head", f"--port={self.port}", "--include-dashboard=false"]
        head += [f"--temp-dir={self.temp_dir}", *self._common()]
        _run(head, self.env)
        worker = [sys.executable, "-c", _WORKER_NODE_SHIM, "start", f"--address={self.address}"]
        worker += [f"--temp-dir={self.temp_dir}", *self._common()]
        _run(worker, self.env)
        self.seen_pids |= self.pids()

    def stop(self) -> None:
        self.seen_pids |= self.pids()
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120)

    def cleanup(self) -> None:
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def pids(self) -> set[int]:
        """Every live process of this cluster (named by its temp folder) and their descendants."""
        out: set[int] = set()
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(self.temp_dir in part for part in p.info["cmdline"] or []):
                    out.add(p.pid)
                    out |= {c.pid for c in p.children(recursive=True)}
            except psutil.Error:
                continue
        return out

    def alive(self, pids: set[int]) -> list[str]:
        """Those of `pids` still running (zombies do not count), described."""
        left = []
        for pid in pids:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{pid} {' '.join(p.cmdline())[:160]}")
            except psutil.Error:
                continue
        return left


def listeners(pids: set[int]) -> list[tuple[int, str, str, int]]:
    """(pid, process name, address, port) of every listening TCP or bound UDP socket of `pids`."""
    out = []
    for c in psutil.net_connections(kind="inet"):
        if c.pid not in pids or not c.laddr:
            continue
        if c.type == socket.SOCK_STREAM and c.status != psutil.CONN_LISTEN:
            continue
        if c.type == socket.SOCK_DGRAM and c.raddr:
            continue
        try:
            name = psutil.Process(c.pid).name()
        except psutil.Error:
            name = "?"
        out.append((c.pid, name, c.laddr.ip, c.laddr.port))
    return out


def outward(found: list[tuple[int, str, str, int]]) -> list[tuple[int, str, str, int]]:
    """The listeners not bound to a loopback address."""

    def loopback(host: str) -> bool:
        ip = ipaddress.ip_address(host.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4's loopback on a v6 socket
        return bool((mapped or ip).is_loopback)

    return [x for x in found if not loopback(x[2])]
