"""Suite files read within budgets: bytes, text, YAML nodes, and the names a suite gives.

:func:`load_suite_yaml` is the only way a suite's YAML is read. It refuses, with the line:

* a file over :data:`MAX_SUITE_BYTES`, text that is not UTF-8 (the byte and its line);
* nesting deeper than :data:`MAX_DEPTH` (PyYAML would otherwise recurse into a RecursionError);
* more than :data:`MAX_NODES` nodes *after alias expansion*: nine levels of ``&a [*a, *a ...]``
  (a "billion laughs") are a few hundred bytes on disk and 10^9 values once anything walks
  them; the count is linear in the composed graph (each anchored node is counted once and its
  size reused), and a recursive alias is refused outright;
* a key given twice in one mapping, naming both lines (PyYAML keeps the last silently).

:func:`check_suite` then checks what a parsed suite names: every name that later becomes a
file (suite, model, task, scenario, variant) has no control characters and a bounded length;
task names are unique (lm-eval keys its results by name, so a duplicate would silently keep
one); and request rates are finite and within [:data:`MIN_REQUEST_RATE`, :data:`MAX_REQUEST_RATE`]
(``1e-300`` requests/s would wait forever for its first arrival).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from harness.safety.names import check_name

MAX_SUITE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 5_000_000
MAX_NAME_CHARS = 200
MIN_REQUEST_RATE = 1e-3  # one request per ~17 minutes
MAX_REQUEST_RATE = 1e6


class SuiteInputError(ValueError):
    """A suite file refused before validation; the message starts with ``file:line:``."""


def decode_suite(raw: bytes, source: str) -> str:
    """The suite's text, or SuiteInputError naming the size or the first byte that is not UTF-8."""
    if len(raw) > MAX_SUITE_BYTES:
        raise SuiteInputError(f"{source}: {len(raw)} bytes, more than a suite may be ({MAX_SUITE_BYTES})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SuiteInputError(
            f"{source}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
            "save the suite as UTF-8"
        ) from None


class _PyParser(Reader, Scanner, Parser):
    """PyYAML's own parser, for an installation built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:  # libyaml's parser (events in C): several times faster than Python's
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _Parser = _PyParser  # type: ignore[misc,assignment]


class _BudgetLoader(Composer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    """A safe loader: events from the parser, nodes composed here (in Python, so the depth is
    checked before recursing), a depth limit, and duplicate keys refused."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[union-attr,arg-type]
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overrides are allowed, as YAML means them
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor says so
            if first is not None:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}: first at line {first}, again at line {line}",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def expanded_size(root: Node, limit: int = MAX_NODES) -> int:
    """Nodes in the document once every alias is expanded, counted in time linear in the graph;
    raises ValueError above `limit` or on a recursive alias."""
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            children = _children(node)
            total = 1 + sum(size[id(c)] for c in children)
            active.discard(nid)
            if total > limit:
                raise ValueError(f"more than {limit} values once aliases are expanded")
            size[nid] = total
            continue
        if nid in size:
            continue
        if nid in active:
            raise ValueError("an alias refers to a node that contains it (recursive alias)")
        active.add(nid)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def load_suite_yaml(text: str) -> tuple[Node | None, Any]:
    """The composed node (for line numbers) and the data of one YAML document, within budgets.

    Raises yaml.YAMLError (a MarkedYAMLError with the line where there is one)."""
    loader = _BudgetLoader(text)
    # The cyclic garbage collector is paused while the tree is built: it has nothing to free
    # here, and its full passes over a growing heap made 100k scenarios super-linear.
    paused = gc.isenabled()
    gc.disable()
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        try:
            expanded_size(node)
        except ValueError as exc:
            raise yaml.composer.ComposerError(None, None, str(exc), node.start_mark) from None
        return node, loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None
    finally:
        if paused:
            gc.enable()
        loader.dispose()


# A field's place in the model -> (its line in the file, its dotted path as the file writes it).
Locate = Callable[[tuple[Any, ...]], tuple[int, str]]


def check_suite(spec: Any, where: Locate) -> list[tuple[int, str, str]]:
    """Problems of a validated SuiteSpec, as ``(line, field, message)``: names, duplicate tasks,
    request rates. Empty when there is none."""
    problems: list[tuple[int, str, str]] = []

    def line_of(loc: tuple[Any, ...]) -> int:
        return where(loc)[0]

    def name(kind: str, loc: tuple[Any, ...], value: str) -> None:
        try:
            check_name(kind, value, MAX_NAME_CHARS)
        except ValueError as exc:
            problems.append((*where(loc), str(exc)))

    name("suite", ("name",), spec.name)
    for i, m in enumerate(spec.models):
        name("model", ("models", i), m)
    tasks = spec.accuracy.tasks
    for i, t in enumerate(tasks):
        name("task", ("accuracy", "tasks", i, "name"), t.name)
    first: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if t.name in first:
            problems.append(
                (
                    line_of(("accuracy", "tasks", i)),
                    f"accuracy.tasks.{i}.name",
                    f"duplicate task name {t.name!r} (also accuracy.tasks.{first[t.name]}): lm-eval keys "
                    "results by name, so one result and one samples file would be lost",
                )
            )
        first.setdefault(t.name, i)
    for i, s in enumerate(spec.performance.scenarios):
        name("scenario", ("performance", "scenarios", i, "name"), s.name)
        rate = s.load.request_rate
        rates = rate if isinstance(rate, list) else [rate]
        for r in rates:
            if r is not None and not (math.isfinite(r) and MIN_REQUEST_RATE <= r <= MAX_REQUEST_RATE):
                problems.append(
                    (
                        *where(("performance", "scenarios", i, "load", "request_rate")),
                        f"{r!r} requests/s is outside [{MIN_REQUEST_RATE:g}, {MAX_REQUEST_RATE:g}]",
                    )
                )
    for i, v in enumerate(spec.variants):
        name("variant", ("variants", i, "name"), v.name)
    return problems
