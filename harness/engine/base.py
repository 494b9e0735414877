"""What the runner needs from an engine, whether it started it or not."""

from __future__ import annotations

from typing import Protocol


class EngineError(RuntimeError):
    """The engine could not start, stopped answering, or died; the message carries its log tail."""


class Engine(Protocol):
    kind: str
    base_url: str
    served_name: str
    startup_s: float | None

    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...

    def check_alive(self) -> None: ...

    def stop(self) -> None: ...
