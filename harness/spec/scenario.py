"""A load scenario of a suite: three sections, and the frozen points it expands to.

* ``load`` (:class:`LoadSection`): what one request looks like and how requests arrive; the
  record's and the load generator's :class:`~harness.record.load.LoadShape`, with a list in
  ``concurrency`` or ``request_rate`` allowed (a sweep);
* ``workload`` (:class:`WorkloadSection`): where prompts come from (dataset, prefixes, turns,
  trace) beyond random exact-length token ids;
* ``rigor`` (:class:`RigorSection`): how the scenario is repeated, swept or searched.

A suite may write the sections nested, or every field flat on the scenario as older suites do:
each flat key goes to the section whose model declares it (found from the models' fields, so a
field added to a section is routable at once). :func:`harness.spec.expand.expand_scenarios`
turns a scenario into :class:`ScenarioPoint` values, whose ``load`` is a plain ``LoadShape``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.record.load import LoadShape
from harness.spec.rigor import RepeatsSpec, SearchSpec, SloSpec, SweepSpec
from harness.spec.workload import ConversationSpec, PrefixSpec, PromptSource, TraceSpec


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadSection(LoadShape):
    """A scenario's load: one point's :class:`LoadShape`, or a list in one load field to sweep it."""

    concurrency: int | list[int] | None = Field(  # type: ignore[assignment]
        default=None,
        description="Requests in flight at once (closed loop); a list sweeps it (points `NAME@cN`).",
    )
    request_rate: float | list[float] | None = Field(  # type: ignore[assignment]
        default=None,
        description="Poisson arrival rate in requests/s (open loop); `concurrency` caps it; "
        "a list sweeps it (points `NAME@rR`).",
    )

    @field_validator("input_tokens", "output_tokens", "num_requests")
    @classmethod
    def _sends_something(cls, value: int) -> int:
        if value < 1:  # a record may hold 0 (an imported run with no rows); a suite sends
            raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 1")
        return value

    @field_validator("temperature", "request_timeout_s")
    @classmethod
    def _stated(cls, value: float | None) -> float:
        if value is None:  # null only in records that do not know it
            raise PydanticCustomError("float_type", "Input should be a valid number")
        return value

    @field_validator("concurrency", "request_rate")
    @classmethod
    def _positive_loads(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ValueError("a sweep needs at least one value")
        if any(v is not None and v <= 0 for v in values):
            raise ValueError("loads must be > 0")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("sweep values must be distinct")
        return value

    def point(self, **loads: Any) -> LoadShape:
        """This load as one point's shape, with the given load fields (a sweep's value) set."""
        fields = {k: getattr(self, k) for k in LoadShape.model_fields}
        return LoadShape.model_validate({**fields, **loads})


class WorkloadSection(_Spec):
    """What the prompts are; all unset: random token ids of exact length, as vllm bench serve."""

    prompts: PromptSource | None = Field(
        default=None, description="Prompt source and length laws (default: random token ids of exact length)."
    )
    prefix: PrefixSpec | None = Field(default=None, description="Shared prefixes in front of every prompt.")
    conversation: ConversationSpec | None = Field(
        default=None, description="Multi-turn sessions; concurrency and num_requests then count sessions."
    )
    trace: TraceSpec | None = Field(
        default=None, description="Replay a trace's send times and lengths instead of a load shape."
    )

    @property
    def is_default(self) -> bool:
        """No workload field set: the load generator draws random exact-length prompts itself."""
        return all(getattr(self, k) is None for k in type(self).model_fields)


class RigorSection(_Spec):
    """How a scenario's points are repeated, swept or searched, and the SLO they are judged by."""

    repeats: Annotated[int, Field(ge=1)] | RepeatsSpec | None = Field(
        default=None,
        description="Times each point runs on the same engine, or {min, max, ci_halfwidth} to repeat "
        "until the interval is narrow enough (default: performance.repeats).",
    )
    sweep: SweepSpec | None = Field(
        default=None, description="GuideLLM-style sweep: synchronous, throughput, rates between."
    )
    slo: SloSpec | None = Field(
        default=None, description="Latency SLO for goodput (default: performance.slo)."
    )
    search: SearchSpec | None = Field(default=None, description="Capacity search under an SLO.")


def _sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The fields of `model` that are sections (pydantic models), by name."""
    out: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out[name] = kind
    return out


def route_flat_keys(model: type[BaseModel], data: Any) -> Any:
    """A flat scenario mapping with each key moved into the section that declares it.

    Keys of `model` itself, and keys no section declares, stay where they are (pydantic then
    names an unknown one as such); a key set both flat and in its section is refused.
    """
    if not isinstance(data, dict):
        return data
    sections = _sections(model)
    out: dict[str, Any] = {}
    moved: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        home = None
        if key not in model.model_fields:
            home = next((s for s, kind in sections.items() if key in kind.model_fields), None)
        if home is None:
            out[key] = value
        else:
            moved.setdefault(home, {})[key] = value
    for home, fields in moved.items():
        given = out.get(home, {})
        if not isinstance(given, dict):
            return data  # a section that is not a mapping: pydantic names it
        twice = sorted(set(fields) & set(given))
        if twice:
            raise ValueError(f"{', '.join(twice)}: set both on the scenario and in its `{home}` section")
        out[home] = {**given, **fields}
    for home in sections:  # a missing section's required fields are then named one by one
        out.setdefault(home, {})
    return out


def flat_form(scenario: dict[str, Any]) -> dict[str, Any]:
    """A scenario's JSON data with its sections' fields on the scenario itself: the form suites
    were written in before sections (cell fingerprints hash it, so they did not change)."""
    out = {k: v for k, v in scenario.items() if k not in _sections(PerfScenario)}
    for name in _sections(PerfScenario):
        out |= scenario.get(name) or {}
    return out


class PerfScenario(_Spec):
    """One load scenario of a suite, as written: a name and its three sections."""

    name: str = Field(description="Scenario name, unique in the suite.", examples=["c1-512-128"])
    load: LoadSection = Field(description="Request lengths, arrivals and sampling.")
    workload: WorkloadSection = Field(default_factory=WorkloadSection, description="Prompt source.")
    rigor: RigorSection = Field(default_factory=RigorSection, description="Repeats, sweep, SLO, search.")

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        return route_flat_keys(cls, data)

    @model_validator(mode="after")
    def _one_load_shape(self) -> PerfScenario:
        load, work, rigor = self.load, self.workload, self.rigor
        if work.trace is not None:
            if load.request_rate is not None or load.ramp_up_strategy is not None:
                raise ValueError("a `trace` scenario takes its send times from the trace: remove the rate")
            if work.prefix is not None or work.conversation is not None:
                raise ValueError(
                    "a `trace` scenario takes its lengths from the trace: remove prefix/conversation"
                )
            if rigor.sweep is not None or rigor.search is not None or isinstance(load.concurrency, list):
                raise ValueError("a `trace` scenario replays its own loads: no sweep, search or list")
            return self
        if work.conversation is not None and work.prefix is not None:
            raise ValueError("`prefix` and `conversation` do not combine (turns share their history)")
        if load.ramp_up_strategy is not None:
            if load.request_rate is not None:
                raise ValueError("a ramp-up sets the arrival rate: remove `request_rate`")
            if load.ramp_up_start_rps is None or load.ramp_up_end_rps is None:
                raise ValueError("`ramp_up_strategy` needs `ramp_up_start_rps` and `ramp_up_end_rps`")
            if load.ramp_up_start_rps > load.ramp_up_end_rps:
                raise ValueError("`ramp_up_start_rps` must not exceed `ramp_up_end_rps`")
        elif load.ramp_up_start_rps is not None or load.ramp_up_end_rps is not None:
            raise ValueError("`ramp_up_start_rps`/`ramp_up_end_rps` need `ramp_up_strategy`")
        adaptive = [k for k in ("sweep", "search") if getattr(rigor, k) is not None]
        if len(adaptive) > 1:
            raise ValueError("set `sweep` or `search`, not both")
        if adaptive and load.ramp_up_strategy is not None:
            raise ValueError(f"`{adaptive[0]}` chooses the loads itself: drop `ramp_up_strategy`")
        lists = [k for k in ("concurrency", "request_rate") if isinstance(getattr(load, k), list)]
        if len(lists) > 1:
            raise ValueError("sweep one of `concurrency` or `request_rate`, not both")
        if adaptive and lists:
            raise ValueError(f"`{adaptive[0]}` chooses the loads itself: drop the list in `{lists[0]}`")
        if rigor.search is not None and rigor.search.over == "concurrency" and load.request_rate is not None:
            raise ValueError("a concurrency search runs a closed loop: drop `request_rate`")
        if (
            not adaptive
            and load.concurrency is None
            and load.request_rate is None
            and load.ramp_up_strategy is None
        ):
            raise ValueError("set `concurrency` or `request_rate` (or `ramp_up_strategy`)")
        return self


class ScenarioPoint(_Spec):
    """One expanded entry of a scenario, resolved: a fixed point (``chat``, ``chat@c16``, a
    repeat ``chat@c16#2``), or a sweep or search whose loads the runner picks as it measures.

    ``rigor.repeats`` and ``rigor.slo`` carry the performance section's defaults where the
    scenario set none, so ``harness plan`` shows what will run.
    """

    name: str = Field(description="Point name: the scenario's, `@c16`/`@r2` for a sweep value.")
    load: LoadShape = Field(description="What the load generator sends and the record stores.")
    workload: WorkloadSection = Field(default_factory=WorkloadSection)
    rigor: RigorSection = Field(default_factory=RigorSection)

    def with_load(self, name: str | None = None, **loads: Any) -> ScenarioPoint:
        """This point renamed and/or at other load values (a sweep's or a probe's)."""
        load = LoadShape.model_validate({**self.load.model_dump(), **loads}) if loads else self.load
        return self.model_copy(update={"name": self.name if name is None else name, "load": load})

    def with_rigor(self, **rigor: Any) -> ScenarioPoint:
        """This point with rigor fields replaced (a probe's resolved SLO)."""
        return self.model_copy(update={"rigor": self.rigor.model_copy(update=rigor)})
