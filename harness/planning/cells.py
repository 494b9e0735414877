"""Cells: the unit of work an executor distributes, and the fingerprint that names each one.

A cell is one (model, variant, suite) run on one node: engine, accuracy, load generator and
GPU meter stay together, because NVML counters are per node and all figures must share one
engine load. Cells are independent, so a campaign parallelises across cells.

The fingerprint is a hash of what determines a cell's measurements, computed without touching
hardware, so that the local executor, the Ray executor and a job array all name the same cell
the same way and ``--resume`` can recognise a finished one:

* the model: preset name, source, Hugging Face id and pinned revision (unpinned: ``null``),
  the build recipe version of a checkpoint built here, the sha256 of a local checkpoint folder;
* the resolved engine arguments (or the external endpoint's URL);
* the suite's workload: its validated spec without ``models``, ``description``, ``gates`` and
  ``resources`` (the suite file's sha256 would change whenever a model is added to the list, which would
  make every finished cell of a growing campaign look new);
* the variant's overlay (``null`` for a suite without variants).

Nothing here imports a heavy library or starts anything: ``harness plan --json`` prints it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.planning.plan import RunPlan, plan_runs
from harness.record.run_record import RunRecord
from harness.spec.suite import LoadedSuite

FINGERPRINT_VERSION = 1
FINGERPRINT_CHARS = 16  # 64 bits of sha256: no collision in any campaign of realistic size

# Suite fields that do not change what a cell measures (`resources` only says where it may run).
# Each variant is hashed on its own cell; listing another variant must not rename the others.
_NOT_WORKLOAD = {"models", "description", "gates", "resources", "variants"}


class CellResources(BaseModel):
    """What one cell asks its scheduler for (Ray task options, or a job array's pod spec).

    On nodes with GPUs a cell takes `num_gpus` of them; on a CPU-only cluster it takes
    `num_cpus` cores and `memory_bytes` of host memory instead (its engine lives there).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_gpus: int = Field(description="GPUs the engine needs on a GPU node: tensor × pipeline parallel size.")
    num_cpus: float = Field(description="CPU cores reserved for the cell.")
    memory_bytes: int = Field(description="Host memory reserved by a CPU cell.")
    accelerator_type: str | None = Field(
        default=None, description="GPU model the cell must run on (suite `resources.accelerator_type`)."
    )
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = Field(
        default=None, description="vLLM's --distributed-executor-backend; 'ray' lets one engine span nodes."
    )

    @property
    def multi_node(self) -> bool:
        """The engine itself is distributed by Ray (a placement group of one GPU per bundle is reserved)."""
        return self.distributed_executor_backend == "ray" and self.num_gpus > 1


class Cell(BaseModel):
    """One unit of work: a plan, its position in the campaign and its fingerprint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(description="Position in the campaign, 0-based (`harness run --cell N`).")
    fingerprint: str = Field(description="Names the cell across executors; see the module docstring.")
    variant: str | None = Field(default=None, description="The suite's technique variant, if it lists any.")
    inputs: dict[str, Any] = Field(description="Exactly what the fingerprint hashes.")
    resources: CellResources
    plan: RunPlan

    @property
    def label(self) -> str:
        return f"[{self.index}] {self.plan.label}"


def _flag(args: tuple[str, ...], *names: str) -> str | None:
    """The value of a CLI flag in `args` (`--flag value` or `--flag=value`); last one wins."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def _model_identity(plan: RunPlan) -> dict[str, Any]:
    m = plan.model
    ident: dict[str, Any] = {"preset": m.name, "source": m.source}
    if m.source == "hub":
        ident |= {"hub_id": m.hub_id, "revision": plan.engine.revision}
    elif m.source == "builtin":
        from harness.model.checkpoints import BUILD_VERSION

        ident["build_version"] = BUILD_VERSION
    else:
        from harness.model.checkpoints import stat_identity

        assert m.local_path is not None
        # Names, sizes and times of the files, not their bytes: planning reads no weights.
        ident |= {"path": m.local_path, "files_sha256": stat_identity(Path(m.local_path))}
    return ident


def workload(suite: LoadedSuite) -> dict[str, Any]:
    """The suite's validated spec, less the fields that do not change a cell's measurements.

    Values equal to their defaults are left out, so that a new optional suite field does not
    change the fingerprint of every cell measured before it existed.
    """
    from harness.spec.scenario import flat_form

    data = suite.spec.model_dump(mode="json", exclude=_NOT_WORKLOAD, exclude_defaults=True)
    perf = data.get("performance")
    if isinstance(perf, dict) and "scenarios" in perf:
        perf["scenarios"] = [flat_form(s) for s in perf["scenarios"]]
    return data


def fingerprint_inputs(plan: RunPlan, variant: str | None = None) -> dict[str, Any]:
    """What a cell's fingerprint hashes (plain JSON data)."""
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "model": _model_identity(plan),
        # The pinned revision is part of the model's identity above, not repeated here (and cells
        # planned before the field existed keep their fingerprints).
        "engine": plan.engine.model_dump(mode="json", exclude={"revision"})
        if plan.endpoint is None
        else None,
        "endpoint": plan.endpoint,
        # Only when given, so cells planned before the option existed keep their fingerprints.
        **({"served_model_name": plan.endpoint_served_name} if plan.endpoint_served_name else {}),
        "workload_sha256": _sha256_json(workload(plan.suite)),
        # The variant's own overlay (its env too, which the engine arguments do not show).
        "variant": plan.variant.model_dump(mode="json") if plan.variant is not None else variant,
    }


def fingerprint(plan: RunPlan, variant: str | None = None) -> str:
    """The cell fingerprint of a plan: 16 hex characters of a sha256 over `fingerprint_inputs`."""
    return _sha256_json(fingerprint_inputs(plan, variant))[:FINGERPRINT_CHARS]


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cell_resources(plan: RunPlan) -> CellResources:
    """GPUs, CPUs and memory a cell needs, from its engine arguments and the suite's `resources`."""
    e = plan.engine
    # Parallel sizes are typed engine fields (refused inside extra_args): tp x pp x dp GPUs.
    tp, pp = e.tensor_parallel_size, e.pipeline_parallel_size
    wanted = plan.suite.spec.resources
    return CellResources(
        num_gpus=0 if plan.endpoint else e.gpu_count,
        num_cpus=wanted.num_cpus,
        memory_bytes=int(wanted.memory_gib * 2**30),
        accelerator_type=wanted.accelerator_type,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        distributed_executor_backend=_flag(e.extra_args, "--distributed-executor-backend"),
    )


def plan_cells(
    suite: LoadedSuite,
    models: list[str] | None = None,
    endpoint: str | None = None,
    endpoint_gpus: tuple[str, ...] = (),
    served_model_name: str | None = None,
) -> list[Cell]:
    """The campaign of a suite: one cell per model and variant, in plan order."""
    cells = []
    planned = plan_runs(
        suite, models, endpoint=endpoint, endpoint_gpus=endpoint_gpus, served_model_name=served_model_name
    )
    for i, plan in enumerate(planned):
        cells.append(
            Cell(
                index=i,
                fingerprint=fingerprint(plan),
                variant=plan.variant.name if plan.variant is not None else None,
                inputs=fingerprint_inputs(plan),
                resources=cell_resources(plan),
                plan=plan,
            )
        )
    return cells


def select_cell(cells: list[Cell], which: str) -> Cell:
    """A cell by index (`3`) or by fingerprint (or a unique prefix of one)."""
    # A fingerprint prefix can be all digits: an index only when it is in range or matches no prefix.
    if which.isdigit() and (
        int(which) < len(cells) or not any(c.fingerprint.startswith(which) for c in cells)
    ):
        index = int(which)
        if index >= len(cells):
            raise IndexError(
                f"--cell {index}: the campaign has {len(cells)} cell(s), numbered 0..{len(cells) - 1}"
            )
        return cells[index]
    found = [c for c in cells if c.fingerprint.startswith(which.lower())]
    if len(found) == 1:
        return found[0]
    problem = "matches no cell" if not found else f"matches {len(found)} cells"
    raise IndexError(f"--cell {which!r} {problem}; `harness plan SUITE --json` lists them")


def finished_fingerprints(records: list[RunRecord]) -> set[str]:
    """Fingerprints of the cells that already have an `ok` record."""
    return {r.fingerprint for r in records if r.status == "ok" and r.fingerprint}


def pending(cells: list[Cell], records: list[RunRecord]) -> tuple[list[Cell], list[Cell]]:
    """(to run, already done): cells without an `ok` record of the same fingerprint, and those with."""
    done = finished_fingerprints(records)
    return [c for c in cells if c.fingerprint not in done], [c for c in cells if c.fingerprint in done]


def cells_json(suite: LoadedSuite, cells: list[Cell]) -> dict[str, Any]:
    """What `harness plan SUITE --json` prints: enough for a job array to run `--cell N` per index."""
    return {
        "suite": suite.spec.name,
        "suite_path": str(suite.path) if suite.path else None,
        "suite_sha256": suite.sha256,
        "fingerprint_version": FINGERPRINT_VERSION,
        "cells": [
            {
                "index": c.index,
                "fingerprint": c.fingerprint,
                "model": c.plan.model.name,
                "variant": c.variant,
                "label": c.plan.label,
                "engine_args": c.plan.engine.as_cli() if not c.plan.endpoint else None,
                "endpoint": c.plan.endpoint,
                "resources": c.resources.model_dump(mode="json"),
                "tasks": [t.model_dump(mode="json") for t in c.plan.tasks],
                "scenarios": [s.name for s in c.plan.scenarios],
                "fingerprint_inputs": c.inputs,
            }
            for c in cells
        ],
    }
