"""The harness version, importable without the lazy table API of ``harness/__init__.py``."""

from __future__ import annotations

__version__ = "0.1.0"
