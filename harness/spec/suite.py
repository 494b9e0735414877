"""Suite definitions: what to run, validated before anything starts.

A suite file is YAML that maps onto :class:`SuiteSpec`. Unknown keys and bad values fail at
load time with the file, line and dotted field path, e.g.::

    suites/smoke.yaml:14: performance.scenarios.0.concurency: unknown field
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.spec.datasets import check_workload_files
from harness.spec.rigor import RepeatsSpec, SloSpec, ValiditySpec
from harness.spec.scenario import PerfScenario
from harness.spec.variants import VariantSpec, check_variants
from harness.spec.yaml_load import SuiteInputError, check_suite, decode_suite, load_suite_yaml

# The suites harness ships (package data, so `pip install harness` users can `harness run smoke`).
SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(Spec):
    """One lm-eval task. Unset fields take the suite's `accuracy` settings, then the `lm_eval` CLI's."""

    name: str = Field(description="lm-eval task name or a bundled offline task.", examples=["arc_challenge"])
    num_fewshot: int | None = Field(
        default=None, ge=0, description="Few-shot examples per prompt; unset: the task's own default."
    )
    limit: float | None = Field(
        default=None,
        gt=0,
        description="Documents to evaluate: a whole number N (the first N) or a fraction below 1 "
        "(that share of the documents), as the CLI's --limit.",
        examples=[100, 0.1],
    )
    apply_chat_template: bool | str | None = Field(
        default=None, description="Overrides accuracy.apply_chat_template for this task."
    )
    fewshot_as_multiturn: bool | None = Field(
        default=None, description="Overrides accuracy.fewshot_as_multiturn for this task."
    )
    system_instruction: str | None = Field(
        default=None, description="Overrides accuracy.system_instruction for this task."
    )
    gen_kwargs: dict[str, Any] | None = Field(
        default=None, description="Merged over accuracy.gen_kwargs for this task (lm-eval --gen_kwargs)."
    )

    @field_validator("limit")
    @classmethod
    def _count_or_fraction(cls, value: float | None) -> float | None:
        if value is not None and value >= 1 and value != int(value):
            raise ValueError("a limit of 1 or more is a count of documents and must be a whole number")
        return value


class InvarianceProbeSpec(Spec):
    """Batch-invariance probe: the same greedy prompts alone (concurrency 1) and under a point's load."""

    prompts: int = Field(default=8, ge=1, description="Distinct greedy prompts sent each way.")
    input_tokens: int = Field(default=64, ge=1, description="Prompt length in the model's tokens.")
    output_tokens: int = Field(default=32, ge=1, description="Greedy tokens generated per prompt.")


class UnderLoadSpec(Spec):
    """Accuracy at load: the chosen tasks evaluated while load points run, paired with the idle run."""

    points: list[str] | Literal["all"] = Field(
        description="Load points (names as the sweep expansion gives them: `chat@c8`) or `all`.",
        examples=[["chat@c8", "chat@c32"], "all"],
    )
    tasks: list[str] | None = Field(
        default=None,
        description="Tasks of `accuracy.tasks` evaluated at each point, with the same arguments and "
        "documents as idle; unset: every task; `[]`: none (the probe alone).",
    )
    limit: float | None = Field(
        default=None,
        gt=0,
        description="Documents per task at load (the first N, or a fraction below 1), at most the "
        "idle run's; unset: the idle run's own limit.",
    )
    probe: InvarianceProbeSpec | None = Field(
        default=None, description="Batch-invariance probe at every chosen point (needs no task)."
    )


class AccuracySpec(Spec):
    """How lm-eval runs; every unset field takes the `lm_eval` CLI's default (lm-eval 0.4.13)."""

    tasks: list[TaskSpec] = Field(default_factory=list, description="Tasks evaluated with lm-eval.")
    include_path: list[str] = Field(
        default_factory=list,
        description="Folders of lm-eval task YAML files (relative to the suite file), as --include_path.",
        examples=[["my_tasks"]],
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Prompts per request sent to the engine (CLI default 1)."
    )
    num_concurrent: int | None = Field(
        default=None, ge=1, description="Requests in flight at once (local-completions default 1)."
    )
    max_length: int | None = Field(
        default=None,
        ge=2,
        description="Context length lm-eval truncates to; unset: the engine's max_model_len read from "
        "its /v1/models.",
    )
    seed: list[int | None] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="lm-eval's four seeds (python random, numpy, torch, few-shot), as --seed; "
        "unset: the CLI's 0,1234,1234,1234.",
    )
    bootstrap_iters: int | None = Field(
        default=None,
        ge=0,
        description="Bootstrap resamples for stderrs that need them; unset: 100000, the only value "
        "the CLI can use.",
    )
    apply_chat_template: bool | str = Field(
        default=False, description="Render prompts with the tokenizer's chat template (or the named one)."
    )
    fewshot_as_multiturn: bool | None = Field(
        default=None, description="Few-shot examples as chat turns; unset: on with a chat template."
    )
    system_instruction: str | None = Field(default=None, description="System instruction for every prompt.")
    gen_kwargs: dict[str, Any] | None = Field(
        default=None, description="Generation settings over each task's own, as --gen_kwargs."
    )
    under_load: UnderLoadSpec | None = Field(
        default=None, description="Accuracy measured at load points, paired against the idle run."
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _names_as_tasks(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("include_path", mode="before")
    @classmethod
    def _one_path_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _multiturn_needs_chat(self) -> AccuracySpec:
        for task in self.tasks:
            chat = (
                task.apply_chat_template if task.apply_chat_template is not None else self.apply_chat_template
            )
            turns = task.fewshot_as_multiturn
            if turns is None:
                turns = self.fewshot_as_multiturn
            if turns and not chat:
                raise ValueError(f"task {task.name}: fewshot_as_multiturn needs apply_chat_template")
        if self.under_load is not None:
            from harness.spec.underload import check_under_load_tasks

            check_under_load_tasks(self.under_load, self.tasks)
        return self


class PerformanceSpec(Spec):
    scenarios: list[PerfScenario] = Field(default_factory=list)
    repeats: Annotated[int, Field(ge=1)] | RepeatsSpec = Field(
        default=1,
        description="Default times each point runs on the same engine, or {min, max, ci_halfwidth}.",
    )
    cooldown_s: float = Field(default=0.0, ge=0, description="Idle seconds between repeats and points.")
    slo: SloSpec | None = Field(default=None, description="Default latency SLO of every scenario.")
    validity: ValiditySpec = Field(
        default_factory=ValiditySpec, description="When a measured point counts as invalid."
    )

    @field_validator("scenarios")
    @classmethod
    def _unique_names(cls, value: list[PerfScenario]) -> list[PerfScenario]:
        names = [s.name for s in value]
        if any("@" in n for n in names):
            raise ValueError("`@` is reserved for point names (NAME@c16); pick another scenario name")
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # linear: 100k scenarios
        if dupes:
            raise ValueError(f"duplicate scenario names: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _searches_have_an_slo(self) -> PerformanceSpec:
        for s in self.scenarios:
            q = s.rigor.search
            if q is not None and q.slo is None and s.rigor.slo is None and self.slo is None:
                raise ValueError(
                    f"scenario {s.name!r}: a capacity search needs an SLO (search.slo, slo or performance.slo)"
                )
        return self


class EngineOverrides(Spec):
    max_model_len: int | None = Field(
        default=None, ge=16, description="Overrides the preset's context length."
    )
    dtype: str | None = Field(default=None, description="Overrides the preset's dtype.")
    tensor_parallel_size: int | None = Field(
        default=None, ge=1, description="Overrides the preset's tensor-parallel size (GPUs per stage)."
    )
    pipeline_parallel_size: int | None = Field(
        default=None, ge=1, description="Overrides the preset's pipeline-parallel size (stages)."
    )
    data_parallel_size: int | None = Field(
        default=None, ge=1, description="Overrides the preset's data-parallel size (engine replicas)."
    )
    revision: str | None = Field(
        default=None,
        description="Hub commit, tag or branch to load (vLLM's --revision), recorded with the run.",
    )
    startup_timeout_s: float = Field(default=600, gt=0, description="Seconds to wait for /health.")
    watchdog_timeout_s: float = Field(
        default=60,
        gt=0,
        description="A running engine that does not answer /health (or whose process is gone) for this "
        "many seconds ends the run as failed, keeping what was measured.",
    )
    extra_args: list[str] = Field(default_factory=list, description="Extra vLLM server CLI arguments.")

    @field_validator("extra_args")
    @classmethod
    def _no_typed_flags(cls, value: list[str]) -> list[str]:
        from harness.model.presets import check_extra_args

        check_extra_args(value)
        return value


class GateThreshold(Spec):
    metric: str = Field(description="Accuracy task name or record field, e.g. 'p99_ttft_ms'.")
    scenario: str | None = Field(
        default=None, description="Scenario the metric belongs to (performance only)."
    )
    higher_is_better: bool | None = Field(default=None, description="Taken from the metric where known.")
    max_rel_change: float | None = Field(default=None, ge=0, description="Allowed worsening as a fraction.")
    max_abs_change: float | None = Field(
        default=None, ge=0, description="Allowed worsening in the metric's unit."
    )


class ResourcesSpec(Spec):
    """Where each cell of the suite may run (read by the Ray executor; ignored by the local one)."""

    accelerator_type: str | None = Field(
        default=None,
        description="GPU model every cell must run on, as Ray names it (e.g. H100, A100-80G, L4).",
        examples=["H100"],
    )
    num_cpus: float = Field(default=1, gt=0, description="CPU cores reserved per cell.")
    memory_gib: float = Field(
        default=4, gt=0, description="Host memory reserved per cell on CPU-only nodes, GiB."
    )


class SuiteSpec(Spec):
    name: str = Field(description="Suite name, used in run ids and records.")
    description: str = ""
    models: list[str] = Field(default_factory=list, description="Preset names run when no --model is given.")
    seed: int = Field(default=1234, description="Seed for prompts, arrivals and sampling.")
    engine: EngineOverrides = Field(default_factory=EngineOverrides)
    accuracy: AccuracySpec = Field(default_factory=AccuracySpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    gates: list[GateThreshold] = Field(
        default_factory=list, description="Regression thresholds for `harness gate`."
    )
    variants: list[VariantSpec] = Field(
        default_factory=list,
        description="Serving-time techniques to compare: one run per model and variant; `base` (or the "
        "first) is the baseline.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="What each cell asks a cluster scheduler for."
    )

    @model_validator(mode="after")
    def _under_load_points_exist(self) -> SuiteSpec:
        if self.accuracy.under_load is not None:
            from harness.spec.underload import check_under_load_points

            check_under_load_points(self.accuracy.under_load, self.performance)
        return self

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, value: list[VariantSpec]) -> list[VariantSpec]:
        return check_variants(value)


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names file, line and field."""


class LoadedSuite(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: SuiteSpec
    path: Path | None
    sha256: str | None


def suite_dirs() -> list[Path]:
    """Where suite names are looked up, first match wins: ``./suites`` (a project's own suites),
    the ``suites/`` folder beside a source checkout of harness, then the suites harness ships."""
    dirs = [Path.cwd() / "suites", Path(__file__).resolve().parents[2] / "suites", SUITES_DIR]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != o.resolve() for o in out):
            out.append(d)
    return out


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A path as given, or ``<dir>/<name>.yaml`` from the first of :func:`suite_dirs` that has it."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        return p
    for d in suite_dirs():
        candidate = d / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted({x.stem for d in suite_dirs() for x in d.glob("*.yaml")})
    raise SuiteError(f"no suite {name_or_path!r}: known suites are {', '.join(known) or 'none'}")


def load_suite(name_or_path: str | Path) -> LoadedSuite:
    path = resolve_suite_path(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read suite file: {exc.strerror}") from exc
    try:
        text = decode_suite(raw, str(path))
    except SuiteInputError as exc:
        raise SuiteError(str(exc)) from None
    spec = parse_suite(text, source=str(path))
    files = check_workload_files(spec, path.parent)  # before `plan` prints or an engine starts
    if files:
        raise SuiteError("\n".join(f"{path}: {p}" for p in files))
    return LoadedSuite(spec=spec, path=path, sha256=hashlib.sha256(raw).hexdigest())


def parse_suite(text: str, source: str = "<suite>") -> SuiteSpec:
    """Validate YAML text as a suite; errors name `source:line: field.path: problem`."""
    try:
        node, data = load_suite_yaml(text)  # budgets: size, depth, aliases, duplicate keys
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{source}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise SuiteError(f"{source}:1: a suite must be a mapping of fields, got {type(data).__name__}")
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        lines: list[str] = []
        for err in exc.errors():
            line_no, field = _locate(node, tuple(err["loc"]))
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"{source}:{line_no}: {field}: {msg}")
        raise SuiteError("\n".join(lines)) from None
    problems = check_suite(spec, lambda loc: _locate(node, loc))
    if problems:
        raise SuiteError("\n".join(f"{source}:{line}: {field}: {msg}" for line, field, msg in problems))
    return spec


def _locate(node: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int, str]:
    """(1-based line, dotted field path) of the deepest YAML node along a model location `loc`.

    The line is the key's for mapping keys. A part the file does not write that is not the
    last is a section the suite wrote flat (`concurrency` on the scenario for
    `load.concurrency`; pydantic only names what the input holds, or a missing last field): the
    path then names the field as the file has it.
    """
    line = node.start_mark.line + 1 if node is not None else 1
    shown: list[str] = []
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(node, yaml.MappingNode):
            keys = {key.value: (key, value) for key, value in node.value}
            if str(part) not in keys and i + 1 < len(parts):
                continue  # a flat-written section
            shown.append(str(part))
            if str(part) not in keys:
                shown.extend(str(p) for p in parts[i + 1 :])
                break
            key, node = keys[str(part)]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            shown.append(str(part))
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            shown.extend(str(p) for p in parts[i:])
            break
    return line, ".".join(shown) or "<root>"
