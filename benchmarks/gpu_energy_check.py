"""GPU energy check in one command, on any NVIDIA machine (needs only torch and nvidia-ml-py).

    python benchmarks/gpu_energy_check.py [--json FILE] [--device N]

Same code as `harness telemetry-check` (harness/telemetry/check.py): set-up facts, NVML read
latency, the counter's update period, settling, three load levels, square waves, error against
window length, sampler disturbance and whole-run checks, each printed with its threshold, in
about 2 minutes. Exit 0: every figure passed; 1: one failed; 2: no GPU here (with the reason).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing harness (its package __init__ files are light).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.telemetry.check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
