"""An OpenAI-compatible server that someone else started (``--endpoint URL``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from harness.engine.base import EngineError


class ExternalEndpoint:
    """Measures a running server; start() only checks it answers, stop() leaves it running."""

    kind = "endpoint"

    def __init__(self, base_url: str, served_name: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.served_name = served_name or ""
        self.timeout_s = timeout_s
        self.startup_s: float | None = None

    @property
    def pid(self) -> int | None:
        return None

    def models(self) -> list[str]:
        with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=10) as r:
            return [m["id"] for m in json.load(r).get("data", [])]

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
        if not self.served_name:
            if not served:
                raise EngineError(f"endpoint {self.base_url} serves no model")
            self.served_name = served[0]
        elif self.served_name not in served:
            raise EngineError(f"endpoint {self.base_url} serves {served}, not {self.served_name!r}")

    def check_alive(self) -> None:
        try:
            self.models()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EngineError(f"endpoint {self.base_url} stopped answering: {exc}") from exc

    def stop(self) -> None:
        return None
