"""Engines: a vLLM server the harness starts, or an endpoint it is given."""

from harness.engine.base import Engine, EngineError

__all__ = ["Engine", "EngineError"]
