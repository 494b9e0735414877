"""Architecture analytics: what sliding windows, GQA, MoE and MLA buy, and the physical limit.

* :mod:`harness.model.facts`: parameters (total, active), weight and KV-cache bytes from a
  ``config.json``; pure arithmetic, no torch.
* :mod:`harness.arch.gpus`: datasheet peaks of common GPUs, looked up by NVML name.
* :mod:`harness.arch.report`: capacity on a GPU and the batch-1 decode roofline.
* :mod:`harness.arch.reported`: published scores per preset, measured minus reported.
* :mod:`harness.arch.record`: the ``analytics`` section of a run record; dashboard tables.

The names below load on first use, so that `harness arch --help` (:mod:`harness.arch.cli`)
imports no pydantic model. No name here is also a submodule's, so a submodule imported first
never shadows one of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.arch.gpus import GPUS, GpuSpec, get_gpu, match_nvml_name
    from harness.arch.record import (
        RecordAnalytics,
        arch_row,
        arch_table,
        record_analytics,
        reported_rows,
        roofline_points,
    )
    from harness.arch.report import (
        ArchReport,
        GpuEstimate,
        build_report,
        estimate,
        load_config,
        preset_facts,
    )
    from harness.arch.reported import (
        ReportedScore,
        measured_value,
        reported_scores,
        reported_vs_measured,
    )
    from harness.model.facts import ArchError, ArchFacts, arch_facts

_WHERE = {
    "harness.arch.gpus": ("GPUS", "GpuSpec", "get_gpu", "match_nvml_name"),
    "harness.arch.record": (
        "RecordAnalytics",
        "arch_row",
        "arch_table",
        "record_analytics",
        "reported_rows",
        "roofline_points",
    ),
    "harness.arch.report": (
        "ArchReport",
        "GpuEstimate",
        "build_report",
        "estimate",
        "load_config",
        "preset_facts",
    ),
    "harness.arch.reported": ("ReportedScore", "measured_value", "reported_scores", "reported_vs_measured"),
    "harness.model.facts": ("ArchError", "ArchFacts", "arch_facts"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "GPUS",
    "ArchError",
    "ArchFacts",
    "ArchReport",
    "GpuEstimate",
    "GpuSpec",
    "RecordAnalytics",
    "ReportedScore",
    "arch_facts",
    "arch_row",
    "arch_table",
    "build_report",
    "estimate",
    "get_gpu",
    "load_config",
    "match_nvml_name",
    "measured_value",
    "preset_facts",
    "record_analytics",
    "reported_rows",
    "reported_scores",
    "reported_vs_measured",
    "roofline_points",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.arch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
