"""`--model org/name` for any Hugging Face model, and suites shipped with the package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.arch import preset_facts
from harness.cli import main
from harness.model.families import family_of
from harness.model.hub import HubModelUnavailableError, is_hub_id
from harness.model.presets import GQA, MHA, MOE, SWA, get_preset
from harness.spec.suite import SUITES_DIR, SuiteError, load_suite, resolve_suite_path

PRESETS_DIR = Path(__file__).resolve().parents[2] / "harness" / "presets"


def _cache(home: Path, hub_id: str, config: dict | Path) -> Path:
    """A Hugging Face cache (HF_HOME layout) holding one model's config.json, as a download leaves it."""
    repo = home / "hub" / f"models--{hub_id.replace('/', '--')}"
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    if isinstance(config, Path):
        shutil.copy(config, snap / "config.json")
    else:
        (snap / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return snap / "config.json"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Hub (HF_HUB_OFFLINE) and an empty Hugging Face cache of our own."""
    home = tmp_path / "hf"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def test_a_cached_hub_model_gets_family_and_features_from_its_config(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cache(offline, "someorg/my-mistral", PRESETS_DIR / "mistral-7b" / "config.json")
    p = get_preset("someorg/my-mistral")
    assert (p.name, p.source, p.hub_id, p.family) == (
        "someorg/my-mistral",
        "hub",
        "someorg/my-mistral",
        "mistral",
    )
    assert p.features == (SWA, GQA) and p.config_path == str(config)
    assert p.engine.dtype == "auto"  # the config's dtype, as vLLM reads it
    facts, origin = preset_facts(p)  # the record's analytics read the same config
    assert facts.kv_bytes_per_token == 131_072 and origin == str(config)
    assert main(["plan", "smoke", "--model", "someorg/my-mistral"]) == 0
    out = capsys.readouterr().out
    assert "someorg/my-mistral [mistral] from someorg/my-mistral" in out and "1 run(s) planned" in out


def test_moe_and_unknown_families(offline: Path) -> None:
    _cache(offline, "org/moe", PRESETS_DIR / "mixtral-8x7b" / "config.json")
    assert get_preset("org/moe").family == "mixtral" and MOE in get_preset("org/moe").features
    _cache(offline, "org/llama2", PRESETS_DIR / "llama2-13b" / "config.json")
    assert get_preset("org/llama2").features == (MHA,)
    _cache(offline, "org/new-arch", {"model_type": "brand_new", "hidden_size": 8})
    p = get_preset("org/new-arch")
    assert (p.family, p.features) == ("other", ())
    assert family_of({"model_type": "qwen2_moe"}) == "qwen" and family_of({}) == "other"


def test_offline_and_not_cached_names_the_remedy(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HubModelUnavailableError) as err:
        get_preset("someorg/not-here")
    msg = str(err.value)
    assert "not reachable" in msg and "huggingface-cli download someorg/not-here --local-dir DIR" in msg
    assert "--model DIR" in msg and "HF_HOME" in msg
    assert main(["plan", "smoke", "--model", "someorg/not-here"]) == 2
    assert "huggingface-cli download someorg/not-here" in capsys.readouterr().err.replace("\n", " ")


def test_a_local_folder_that_looks_like_a_hub_id_stays_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Path
) -> None:
    folder = tmp_path / "org" / "ckpt"
    folder.mkdir(parents=True)
    shutil.copy(PRESETS_DIR / "mistral-7b" / "config.json", folder / "config.json")
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("org/ckpt") and is_hub_id("org/other")
    assert get_preset("org/ckpt").source == "local"
    assert not is_hub_id("mistral-7b") and not is_hub_id("a/b/c")


def test_suites_ship_with_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no suites/ here
    assert {p.stem for p in SUITES_DIR.glob("*.yaml")} >= {"smoke", "standard"}
    assert resolve_suite_path("smoke") == SUITES_DIR / "smoke.yaml"
    assert load_suite("standard").spec.name == "standard"
    # A project's own suites/ folder comes first, then the shipped ones.
    (tmp_path / "suites").mkdir()
    mine = tmp_path / "suites" / "smoke.yaml"
    mine.write_text((SUITES_DIR / "smoke.yaml").read_text().replace("name: smoke", "name: my-smoke"))
    assert load_suite("smoke").spec.name == "my-smoke"
    assert resolve_suite_path("standard") == SUITES_DIR / "standard.yaml"
    with pytest.raises(SuiteError, match=r"known suites are .*\bsmoke, standard\b"):
        resolve_suite_path("nope")
