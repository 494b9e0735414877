"""Tiny checkpoints keep their family's tokenizer behaviour (BOS or not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.model import checkpoints


@pytest.mark.parametrize(("adds_bos", "has_bos"), [(True, True), (False, True), (False, False)])
def test_tiny_tokenizer_bos_follows_the_family(tmp_path: Path, adds_bos: bool, has_bos: bool) -> None:
    from transformers import AutoTokenizer

    checkpoints._mistral_v1_tokenizer(tmp_path, add_bos=adds_bos, has_bos=has_bos)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    # "Question:" is 22478, 28747 in the Mistral v1 vocabulary; BOS is 1.
    expected = ([1] if adds_bos else []) + [22478, 28747]
    assert tok("Question:").input_ids == expected
    assert tok.encode("Question:") == expected
    assert tok("Question:", add_special_tokens=False).input_ids == [22478, 28747]
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert cfg["add_bos_token"] is adds_bos
    assert (cfg.get("bos_token") is not None) is has_bos
    assert (tok.bos_token_id is not None) is has_bos


def test_family_bos_facts_cover_every_tiny_model() -> None:
    assert set(checkpoints.FAMILY_ADDS_BOS) == set(checkpoints.TINY_MODELS)
    # The real tokenizers: Llama 2, Mistral, Mixtral and DeepSeek prepend <s>; Phi-3 and Qwen do not.
    assert {n for n, bos in checkpoints.FAMILY_ADDS_BOS.items() if bos} == {
        "tiny-llama",
        "tiny-mistral",
        "tiny-mixtral",
        "tiny-deepseek",
    }


def test_built_tiny_mistral_adds_bos_like_mistral_7b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    path = checkpoints.ensure_checkpoint("tiny-mistral")
    assert path.name == f"tiny-mistral-b{checkpoints.build_version('tiny-mistral')}"
    assert AutoTokenizer.from_pretrained(str(path)).encode("Question:") == [1, 22478, 28747]
    marker = json.loads((path / checkpoints.MARKER).read_text())
    assert "adds BOS" in marker["source"]


def test_recipe_version_is_part_of_the_cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert checkpoints.checkpoint_dir("tiny-llama").name == f"tiny-llama-b{checkpoints.BUILD_VERSION}"
    # smollm2's recipe did not change, so its cached build stays valid.
    assert checkpoints.checkpoint_dir("smollm2-135m").name == "smollm2-135m-b1"
