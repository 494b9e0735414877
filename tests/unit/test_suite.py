"""Suite validation (file, line, field in every error), planning and model lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.model.presets import PRESETS, UnknownModelError, get_preset
from harness.planning.plan import describe, plan_runs
from harness.spec.suite import SuiteError, load_suite, parse_suite

GOOD = """\
name: t
models: [tiny-llama]
accuracy:
  tasks:
    - harness_capitals
    - {name: harness_arithmetic, num_fewshot: 3, limit: 10}
performance:
  scenarios:
    - {name: a, input_tokens: 8, output_tokens: 4, num_requests: 2, concurrency: 1}
"""


def test_shipped_suites_validate() -> None:
    smoke = load_suite("smoke")
    standard = load_suite("standard")
    assert smoke.spec.models == ["smollm2-135m"]
    shots = {t.name: t.num_fewshot for t in standard.spec.accuracy.tasks}
    assert shots == {
        "arc_challenge": 25,
        "hellaswag": 10,
        "mmlu": 5,
        "truthfulqa_mc2": 0,
        "winogrande": 5,
        "gsm8k": 5,
    }
    conc = sorted(s.load.concurrency or 0 for s in standard.spec.performance.scenarios)
    assert conc == [1, 64]
    assert all(
        (s.load.input_tokens, s.load.output_tokens) == (512, 128) for s in standard.spec.performance.scenarios
    )


def test_string_tasks_are_accepted() -> None:
    spec = parse_suite(GOOD)
    assert [t.name for t in spec.accuracy.tasks] == ["harness_capitals", "harness_arithmetic"]
    assert spec.accuracy.tasks[1].limit == 10


def test_unknown_key_names_file_line_and_field() -> None:
    bad = GOOD.replace("concurrency: 1}", "concurency: 1}")
    with pytest.raises(SuiteError) as err:
        parse_suite(bad, source="suites/x.yaml")
    msg = str(err.value)
    assert "suites/x.yaml:9: performance.scenarios.0.concurency: unknown field" in msg


def test_bad_value_names_line() -> None:
    bad = GOOD.replace("limit: 10", "limit: -3")
    with pytest.raises(SuiteError, match=r"<suite>:6: accuracy\.tasks\.1\.limit: .*greater than 0"):
        parse_suite(bad)


def test_top_level_typo_and_missing_load_shape() -> None:
    with pytest.raises(SuiteError, match=r":1: modles: unknown field"):
        parse_suite("modles: [a]\nname: x\n")
    no_shape = GOOD.replace(", concurrency: 1}", "}")
    with pytest.raises(
        SuiteError, match=r":9: performance\.scenarios\.0: .*set `concurrency` or `request_rate`"
    ):
        parse_suite(no_shape)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nmodels: [a\n")
    with pytest.raises(SuiteError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_suite(p)


def test_unknown_suite_lists_known() -> None:
    with pytest.raises(SuiteError, match="known suites are .*smoke"):
        load_suite("smokee")


def test_unknown_model_names_nearest_presets() -> None:
    with pytest.raises(UnknownModelError, match="did you mean mistral-7b"):
        get_preset("mistral7b")


def test_presets_cover_every_family() -> None:
    families = {p.family for p in PRESETS.values()}
    assert {"mistral", "llama", "mixtral", "phi", "qwen", "deepseek"} <= families
    assert PRESETS["mixtral-8x7b"].engine.tensor_parallel_size == 2
    assert PRESETS["llama2-13b"].gated


def test_local_checkpoint_dir_is_a_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    preset = get_preset(str(tmp_path))
    assert preset.source == "local" and preset.family == "qwen"


def test_plan_is_pure_and_describes_everything(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(GOOD + "engine:\n  max_model_len: 512\n  extra_args: [--enforce-eager]\n")
    plans = plan_runs(load_suite(p), ["tiny-mistral", "tiny-llama"])
    assert [pl.model.name for pl in plans] == ["tiny-mistral", "tiny-llama"]
    assert plans[0].engine.max_model_len == 512
    assert "--enforce-eager" in plans[0].engine.as_cli()
    text = "\n".join(describe(plans[0]))
    assert "harness_arithmetic (3-shot, limit 10)" in text
    assert "a: 2 requests × 8 in / 4 out, concurrency 1" in text


def test_cli_plan_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "smoke", "--model", "tiny-qwen"]) == 0
    out = capsys.readouterr().out
    assert "tiny-qwen × smoke" in out and "nothing was started" in out
    assert main(["plan", "smoke", "--model", "mixtral8x7b"]) == 2
    assert "did you mean mixtral-8x7b" in capsys.readouterr().err
