"""`harness COMMAND --help` imports no heavy library (issue #20: the CLI as a command table).

Each command's module is imported, and its --help printed, in a fresh interpreter; then
``sys.modules`` is read. numpy, pandas, pyarrow, plotly, pydantic and the record models load
only when a command runs. Not a timing test: benchmarks/cli_startup.py prints the times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import _COMMANDS

ROOT = Path(__file__).resolve().parents[2]

HEAVY = (
    "numpy",
    "pandas",
    "pyarrow",
    "plotly",
    "pydantic",
    "pydantic_core",
    "yaml",
    "harness.record.run_record",
    "harness.gate.compare",
    "harness.storage.store",
)

_PROBE = """
import contextlib, io, json, sys
import {module}
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main([{command!r}, "--help"])
    except SystemExit:
        pass
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def _loaded(module: str, command: str) -> list[str]:
    """The heavy modules loaded after importing `module` and printing `command`'s help."""
    code = _PROBE.format(module=module, command=command, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        check=True,
    )
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def _heavy_after(command: str) -> list[str]:
    return _loaded(_COMMANDS[command][0].partition(":")[0], command)


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_command_help_imports_nothing_heavy(command: str) -> None:
    assert _heavy_after(command) == [], f"`harness {command} --help` imports these at module level"


def test_the_probe_sees_a_heavy_import() -> None:
    """The check itself can fail: a module that imports the records is caught."""
    assert "pydantic" in _loaded("harness.record.run_record", "gate")
