"""The import contract covers the whole package (issue #20): a new stage package must be placed."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in cfg["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return layers


def test_every_package_and_root_module_is_named_in_the_layers_contract() -> None:
    named = {x.strip() for line in _layers() for x in line.split("|")}
    harness = ROOT / "harness"
    packages = {f"harness.{p.parent.name}" for p in harness.glob("*/__init__.py")}
    modules = {f"harness.{p.stem}" for p in harness.glob("*.py") if p.stem != "__init__"}
    assert (packages | modules) - named == set(), "place the new package in [tool.importlinter] layers"


def test_the_root_holds_few_modules() -> None:
    root_modules = [p.name for p in (ROOT / "harness").glob("*.py")]
    assert len(root_modules) <= 8, root_modules
