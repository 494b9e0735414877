"""What a run ran on, as people and file names spell it: one label and one slug for every reader.

The gate, the baselines and the dashboard all name hardware through these two functions, so
a baseline file, a gate report and a leaderboard row say the same thing.
"""

from __future__ import annotations

import re
from collections import Counter

from harness.record.run_record import Environment


def file_slug(text: str) -> str:
    """Lower-case letters, digits and dots, runs of anything else as one ``-``; never empty."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"


def hardware_label(env: Environment) -> str:
    """E.g. ``1× NVIDIA H100 80GB HBM3``, ``CPU: AMD EPYC 7B13 (2 cores)`` or ``unknown hardware``."""
    if env.gpus:
        counts = Counter(g.name for g in env.gpus)
        return " + ".join(f"{n}× {name}" for name, n in sorted(counts.items()))
    if env.cpu_model:
        cores = f" ({env.cpu_count} cores)" if env.cpu_count else ""
        return f"CPU: {env.cpu_model}{cores}"
    return "unknown hardware"


def hardware_slug(env: Environment) -> str:
    """File-name-safe hardware key: GPU names with counts, else the CPU model.

    e.g. ``nvidia-h100-80gb-hbm3-x2`` or ``cpu-amd-epyc-7763-64-core-processor``.
    """
    if env.gpus:
        counts = Counter(g.name for g in env.gpus)
        return "+".join(f"{file_slug(name)}-x{n}" for name, n in sorted(counts.items()))
    return f"cpu-{file_slug(env.cpu_model or 'unknown')}"
