"""Where the engine gets a model's weights: built here, a local folder, the Hugging Face cache or the Hub.

:func:`resolve_model` fails at once, with the remedy in the message, when the weights cannot
be had on this machine (no network and no local copy), before any engine is started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.model.types import ModelPreset


class ModelUnavailableError(RuntimeError):
    """The weights cannot be had on this machine (no network and no local copy)."""


@dataclass
class ResolvedModel:
    """The weights as the engine will load them, with their provenance for the record."""

    path: str  # what the engine loads: a directory or a Hub id
    tokenizer: str
    revision: str | None
    checksum: str | None
    source_note: str


def resolve_model(m: ModelPreset, revision: str | None = None) -> ResolvedModel:
    """Where the engine gets ``m``'s weights (at the pinned Hub ``revision``, if any); fails at
    once, with a remedy, if it cannot."""
    from harness.model.checkpoints import checkpoint_checksum, ensure_checkpoint

    if m.source == "builtin":
        path = ensure_checkpoint(m.name)
        return ResolvedModel(str(path), str(path), None, checkpoint_checksum(path), "built on this machine")
    if m.source == "local":
        assert m.local_path is not None
        return ResolvedModel(
            m.local_path, m.local_path, None, checkpoint_checksum(Path(m.local_path)), "local"
        )
    assert m.hub_id is not None
    return _resolve_hub(m.hub_id, gated=m.gated, revision=revision)


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """Whether the Hugging Face Hub answers on port 443 within ``timeout_s`` (False under HF_HUB_OFFLINE=1)."""
    import socket
    import threading
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout_s + 1)  # DNS resolution has no timeout of its own
    return bool(ok and ok[0])


def _resolve_hub(hub_id: str, gated: bool, revision: str | None = None) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    try:  # a complete local copy in the Hugging Face cache works offline
        path = snapshot_download(hub_id, revision=revision, local_files_only=True)
        return ResolvedModel(path, path, Path(path).name, None, "Hugging Face cache")
    except Exception:  # noqa: BLE001 - any cache miss means: not available locally
        pass
    if not hub_reachable():
        token = " with HF_TOKEN set (gated model: accept its licence first)" if gated else ""
        raise ModelUnavailableError(
            f"the weights of {hub_id} cannot be fetched: the Hugging Face Hub is not reachable from this "
            f"machine and no local copy is in the Hugging Face cache. Download them where there is network"
            f"{token} (`huggingface-cli download {hub_id} --local-dir DIR`), copy DIR here and run "
            f"`harness run SUITE --model DIR`, or set HF_HOME to a cache that holds them."
        )
    resolved = revision  # a pinned tag or branch is resolved to its commit where the Hub answers
    try:
        from huggingface_hub import HfApi

        resolved = HfApi().model_info(hub_id, revision=revision).sha or revision
    except Exception:  # noqa: BLE001 - the engine gives the real error (auth, missing repo)
        pass
    return ResolvedModel(hub_id, hub_id, resolved, None, "Hugging Face Hub")
