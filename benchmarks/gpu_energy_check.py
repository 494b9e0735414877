"""GPU energy check in one command, on any NVIDIA machine (needs only torch and nvidia-ml-py).

    python benchmarks/gpu_energy_check.py [--duration-s 30] [--idle-s 5] [--json]

Runs bf16 matrix products for a fixed time and measures them with NVML's energy counter and with
the integral of sampled power at the same time; prints both energies, their ratio, the sampler's
achieved rate and idle vs loaded power. Same code as `harness telemetry-check`
(harness/telemetry/check.py). Exit 0: agreement within the tolerance; 1: not; 2: no GPU here.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing harness (its package __init__ files are light).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.telemetry.check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
