"""Architecture analytics: what sliding windows, GQA, MoE and MLA buy, and the physical limit.

* :mod:`harness.model.facts`: parameters (total, active), weight and KV-cache bytes from a
  ``config.json``; pure arithmetic, no torch.
* :mod:`harness.arch.gpus`: datasheet peaks of common GPUs, looked up by NVML name.
* :mod:`harness.arch.report`: capacity on a GPU and the batch-1 decode roofline.
* :mod:`harness.arch.reported`: published scores per preset, measured minus reported.
* :mod:`harness.arch.record`: the ``analytics`` section of a run record; dashboard tables.
"""

from __future__ import annotations

from harness.arch.gpus import GPUS, GpuSpec, get_gpu, match_nvml_name
from harness.arch.record import (
    RecordAnalytics,
    arch_row,
    arch_table,
    record_analytics,
    reported_rows,
    roofline_points,
)
from harness.arch.report import ArchReport, GpuEstimate, build_report, estimate, load_config, preset_facts
from harness.arch.reported import ReportedScore, measured_value, reported_scores, reported_vs_measured
from harness.model.facts import ArchError, ArchFacts, arch_facts

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
