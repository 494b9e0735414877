"""One family detection for every model source: a config's ``model_type`` -> preset family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# config.json model_type -> preset family (first match wins, so mixtral before mistral).
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("mixtral", "mixtral"),
    ("mistral", "mistral"),
    ("llama", "llama"),
    ("phi", "phi"),
    ("qwen", "qwen"),
    ("deepseek", "deepseek"),
)


def family_of(config: dict[str, Any]) -> str:
    """The preset family of a config (by ``model_type``), or ``other``."""
    model_type = str(config.get("model_type") or "").lower()
    for key, family in _FAMILIES:
        if key in model_type:
            return family
    return "other"


def family_of_dir(path: Path) -> str:
    """The family of the checkpoint folder ``path`` (its config.json), ``other`` if unreadable."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return "other"
    return family_of(config) if isinstance(config, dict) else "other"
