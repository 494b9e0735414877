"""An OpenAI-compatible server that someone else started (``--endpoint URL``), and the
``/v1/models`` facts the harness reads from any server."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from harness.engine.base import EngineError


def served_models(base_url: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The ``data`` entries of the server's ``/v1/models``."""
    url = f"{base_url.rstrip('/').removesuffix('/v1')}/v1/models"
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        data = json.load(r).get("data", [])
    return [m for m in data if isinstance(m, dict)]


def served_max_model_len(base_url: str, served_name: str) -> int | None:
    """The context length the server gives `served_name` (vLLM's ``max_model_len``), if it says."""
    try:
        models = served_models(base_url)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    for m in models:
        if m.get("id") == served_name and isinstance(m.get("max_model_len"), int):
            return int(m["max_model_len"])
    return None


class ExternalEndpoint:
    """Measures a running server; start() only checks it answers and serves the model asked for,
    stop() leaves it running."""

    kind = "endpoint"

    def __init__(
        self,
        base_url: str,
        served_name: str | None = None,
        timeout_s: float = 30.0,
        accepted_names: tuple[str, ...] = (),
    ) -> None:
        """
        Args:
            served_name: the model name to use; must be served. None: the first served model,
                unless `accepted_names` is given.
            accepted_names: names the asked-for model may be served under (preset name, Hub id,
                checkpoint folder); the first one served is used. The first name is the one
                quoted when none is served.
        """
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.served_name = served_name or ""
        self.accepted_names = tuple(n for n in accepted_names if n)
        self.timeout_s = timeout_s
        self.startup_s: float | None = None

    @property
    def pid(self) -> int | None:
        return None

    def models(self) -> list[str]:
        return [str(m.get("id")) for m in served_models(self.base_url)]

    def start(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                served = self.models()
                break
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
                time.sleep(1)
        else:
            raise EngineError(f"endpoint {self.base_url} does not answer /v1/models: {last}")
        if self.served_name:
            if self.served_name not in served:
                raise EngineError(f"endpoint {self.base_url} serves {served}, not {self.served_name!r}")
            return
        if self.accepted_names:
            match = [n for n in self.accepted_names if n in served]
            if not match:
                raise EngineError(
                    f"endpoint {self.base_url} serves {', '.join(map(repr, served)) or 'no model'}, "
                    f"not the model asked for with --model: {self.accepted_names[0]!r}"
                    + (
                        f" (also accepted: {', '.join(self.accepted_names[1:])})"
                        if len(self.accepted_names) > 1
                        else ""
                    )
                )
            self.served_name = match[0]
            return
        if not served:
            raise EngineError(f"endpoint {self.base_url} serves no model")
        self.served_name = served[0]

    def check_alive(self) -> None:
        try:
            self.models()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EngineError(f"endpoint {self.base_url} stopped answering: {exc}") from exc

    def stop(self) -> None:
        return None
