"""What every importer shares: the error, strict field access, and the parsed run (plain data).

Readers parse a whole file into an :class:`ImportedRun` before anything is written, so a file
that fails half-way leaves the results folder untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.loadgen.metrics import RequestTiming
    from harness.record.run_record import TaskResult

_NOTHING = object()


class ImportFormatError(ValueError):
    """A file that is not what its kind promises: names the file, the field and what was expected."""

    def __init__(self, path: str | Path, where: str, expected: str, got: object = _NOTHING) -> None:
        self.path, self.where, self.expected = str(path), where, expected
        tail = "" if got is _NOTHING else f", got {_short(got)}"
        super().__init__(f"{path}: {where}: expected {expected}{tail}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: Path) -> Any:
    """A JSON document; a truncated or invalid one fails naming the line and column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportFormatError(path, "file", "a readable file", exc.strerror) from exc
    except UnicodeDecodeError as exc:
        raise ImportFormatError(path, "file", "UTF-8 text", f"byte {exc.start}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(
            path, f"line {exc.lineno} column {exc.colno}", "a complete JSON document", exc.msg
        ) from exc


def read_jsonl(path: Path) -> list[Any]:
    """One JSON value per non-empty line; a bad line fails naming its number."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ImportFormatError(path, "file", "a readable file", exc.strerror) from exc
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ImportFormatError(path, f"line {n}", "one complete JSON object per line", exc.msg) from exc
    return out


class Fields:
    """Typed access to one JSON object of a file, every failure naming the dotted field path."""

    def __init__(self, path: Path, obj: Any, where: str = "") -> None:
        if not isinstance(obj, dict):
            raise ImportFormatError(path, where or "(document)", "a JSON object", type(obj).__name__)
        self.path, self.obj, self.where = path, obj, where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def raw(self, key: str, default: Any = _NOTHING) -> Any:
        if key not in self.obj:
            if default is _NOTHING:
                raise ImportFormatError(self.path, self._name(key), "this field (missing)")
            return default
        return self.obj[key]

    def sub(self, key: str) -> Fields:
        return Fields(self.path, self.raw(key), self._name(key))

    def number(self, key: str, *, optional: bool = False) -> float | None:
        v = self.raw(key, None if optional else _NOTHING)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ImportFormatError(self.path, self._name(key), "a finite number", v)
        return float(v)

    def num(self, key: str) -> float:
        v = self.number(key)
        assert v is not None
        return v

    def integer(self, key: str, *, optional: bool = False) -> int | None:
        v = self.raw(key, None if optional else _NOTHING)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            raise ImportFormatError(self.path, self._name(key), "an integer", v)
        return int(v)

    def text(self, key: str, *, optional: bool = False) -> str | None:
        v = self.raw(key, None if optional else _NOTHING)
        if v is None and optional:
            return None
        if not isinstance(v, str):
            raise ImportFormatError(self.path, self._name(key), "a string", v)
        return v

    def array(self, key: str, length: int | None = None) -> list[Any]:
        v = self.raw(key)
        if not isinstance(v, list):
            raise ImportFormatError(self.path, self._name(key), "a list", type(v).__name__)
        if length is not None and len(v) != length:
            raise ImportFormatError(self.path, self._name(key), f"a list of {length} entries", len(v))
        return v


def numbers(path: Path, where: str, values: list[Any]) -> list[float]:
    """Finite numbers from a JSON list (each failure names its index)."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ImportFormatError(path, f"{where}[{i}]", "a finite number", v)
        out.append(float(v))
    return out


@dataclass
class ImportedScenario:
    """One benchmark of the file: its request rows and what it says about its load."""

    name: str
    requests: list[RequestTiming]
    duration_s: float = field(
        metadata={"doc": "The tool's benchmark window, seconds (the throughputs' denominator)."}
    )
    input_tokens: int | None = None  # asked-for lengths, where the file states them
    output_tokens: int | None = None
    concurrency: int | None = None
    request_rate: float | None = None
    seed: int | None = None
    warmup_requests: int = 0
    tool_figures: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    command: str | None = None
    aggregates: dict[str, Any] | None = None  # no request rows: the file's own figures (vLLM's keys)


@dataclass
class ImportedRun:
    """A whole file (or folder) parsed: everything needed to write its record, nothing written yet."""

    tool: str
    version: str | None
    files: list[Path]
    model: str
    started_at: datetime
    finished_at: datetime
    endpoint: str | None = None
    command: str | None = None
    scenarios: list[ImportedScenario] = field(default_factory=list)
    tasks: list[TaskResult] = field(default_factory=list)
    samples: dict[str, Path] = field(default_factory=dict)  # file name under samples/ -> source file
    unmeasured: dict[str, str] = field(default_factory=dict)
    tokenizer: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)  # versions the file states
