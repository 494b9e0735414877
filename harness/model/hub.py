"""Any Hugging Face model id as a model (`--model org/name`), not only the presets.

The model's family and efficiency features are read from its ``config.json`` with the same
arithmetic ``harness arch`` uses for presets (:mod:`harness.model.facts`). The config comes
from the Hugging Face cache when it holds one, else from the Hub; without either, the error
says how to get the model onto this machine, as for presets (:mod:`harness.model.weights`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from harness.model.families import family_of
from harness.model.types import GQA, MHA, MLA, MOE, SWA, EngineArgs, ModelPreset, UnknownModelError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubModelUnavailableError(UnknownModelError):
    """A Hub id whose config cannot be had here (offline and not cached, gated, or no such repo)."""


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as ``org/name`` and is not a path on this machine."""
    return bool(HUB_ID.match(name)) and not Path(name).expanduser().exists()


def features_of(config: dict[str, Any]) -> tuple[str, ...]:
    """Efficiency features the config declares (attention kind, sliding window, experts)."""
    from harness.model.facts import ArchError, arch_facts

    try:
        facts = arch_facts(config)
    except (ArchError, KeyError, TypeError, ValueError):  # a family the arithmetic does not know
        return ()
    attention = {"GQA": GQA, "MHA": MHA, "MLA": MLA, "MQA": "multi-query attention"}[facts.attention]
    out = [attention]
    if facts.sliding_window and facts.windowed_layers:
        out.insert(0, SWA)
    if facts.moe is not None:
        out.append(MOE)
    return tuple(out)


def _hf_cache_dir() -> Path:
    # Read at call time (huggingface_hub reads its constants once, at import).
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def fetch_config(hub_id: str) -> tuple[Path, str]:
    """The model's ``config.json`` on this machine, and where it came from: the Hugging Face
    cache if it holds one, else downloaded from the Hub (one small file).

    Raises HubModelUnavailableError naming the remedy when neither works.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise HubModelUnavailableError(
            f"{hub_id}: reading a Hub model needs huggingface_hub (`pip install 'harness[eval]'`)"
        ) from exc
    cache = _hf_cache_dir()
    try:
        path = hf_hub_download(hub_id, "config.json", cache_dir=cache, local_files_only=True)
        return Path(str(path)), "Hugging Face cache"
    except Exception:  # noqa: BLE001 - any cache miss: try the Hub
        pass
    from harness.model.weights import hub_reachable

    if not hub_reachable():
        raise HubModelUnavailableError(
            f"{hub_id} is not a preset, its config is not in the Hugging Face cache ({cache}) and the "
            f"Hugging Face Hub is not reachable from this machine. Download the model where there is "
            f"network (`huggingface-cli download {hub_id} --local-dir DIR`; gated models need HF_TOKEN and "
            f"an accepted licence), copy DIR here and use `--model DIR`, or set HF_HOME to a cache that holds "
            f"it. `harness models` lists the presets."
        )
    try:
        path = hf_hub_download(hub_id, "config.json", cache_dir=cache)
    except Exception as exc:  # noqa: BLE001 - translated: gated, missing repo, no config
        name = type(exc).__name__
        why = {
            "GatedRepoError": "is gated: set HF_TOKEN and accept its licence on the Hub",
            "RepositoryNotFoundError": "is not a model on the Hugging Face Hub (or is private: set HF_TOKEN)",
            "EntryNotFoundError": "has no config.json (not a transformers model)",
        }.get(name, f"could not be read from the Hub ({name}: {exc})")
        raise HubModelUnavailableError(f"{hub_id} {why}") from exc
    return Path(str(path)), "Hugging Face Hub"


def hub_preset(hub_id: str) -> ModelPreset:
    """A preset for any Hub model: family and features from its config, vLLM's defaults otherwise
    (``dtype=auto`` takes the config's dtype; the suite's engine overrides apply as for presets)."""
    path, origin = fetch_config(hub_id)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HubModelUnavailableError(f"{hub_id}: cannot read its config.json ({path}): {exc}") from exc
    if not isinstance(config, dict):
        raise HubModelUnavailableError(f"{hub_id}: its config.json ({path}) is not a JSON object")
    model_type = config.get("model_type") or "unknown"
    return ModelPreset(
        name=hub_id,
        family=family_of(config),  # type: ignore[arg-type]
        source="hub",
        hub_id=hub_id,
        engine=EngineArgs(),
        features=features_of(config),
        description=f"{hub_id} (model_type {model_type}; config from the {origin})",
        config_path=str(path),
    )
