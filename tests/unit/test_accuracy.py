"""Accuracy settings: the lm_eval CLI's defaults, the recorded command, results taken from lm-eval."""

from __future__ import annotations

import inspect
import shlex
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from harness.accuracy.lmeval import AccuracyError, local_completions_args, task_results
from harness.accuracy.settings import (
    LM_EVAL_CLI_BATCH_SIZE,
    LM_EVAL_CLI_BOOTSTRAP_ITERS,
    LM_EVAL_CLI_SEEDS,
    TaskInvocation,
    resolve_invocation,
)
from harness.spec.suite import AccuracySpec, SuiteError, TaskSpec, parse_suite

ARGS = local_completions_args(
    "http://127.0.0.1:8000", "tiny-mistral", "/models/tiny, mistral", 4096, None, True
)


def test_cli_defaults_are_lm_evals_own() -> None:
    from lm_eval import simple_evaluate
    from lm_eval.config.evaluate_config import DEFAULT_SEED, EvaluatorConfig

    assert tuple(DEFAULT_SEED) == LM_EVAL_CLI_SEEDS
    assert EvaluatorConfig().batch_size == LM_EVAL_CLI_BATCH_SIZE
    assert (
        inspect.signature(simple_evaluate).parameters["bootstrap_iters"].default
        == LM_EVAL_CLI_BOOTSTRAP_ITERS
    )
    assert "bootstrap_iters" not in {f for f in EvaluatorConfig.__dataclass_fields__}


def _cli_config(command: str) -> Any:
    """The EvaluatorConfig that `lm_eval` builds from a command line (nothing is run)."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.config.evaluate_config import EvaluatorConfig

    argv = shlex.split(command.split("  #")[0])
    with mock.patch.object(sys, "argv", argv):
        args = HarnessCLI().parse_args()
    return EvaluatorConfig.from_cli(args)


def _assert_cli_matches(inv: TaskInvocation) -> None:
    cfg = _cli_config(inv.command())
    kw = inv.simple_evaluate_kwargs()
    assert cfg.model == kw["model"]
    assert cfg.model_args == kw["model_args"]
    assert cfg.tasks in (inv.task, [inv.task])
    assert cfg.num_fewshot == kw["num_fewshot"]
    assert cfg.limit == kw["limit"]
    assert str(cfg.batch_size) == kw["batch_size"]
    assert cfg.seed == [
        kw["random_seed"],
        kw["numpy_random_seed"],
        kw["torch_random_seed"],
        kw["fewshot_random_seed"],
    ]
    assert cfg.apply_chat_template == kw["apply_chat_template"]
    assert cfg.fewshot_as_multiturn == kw["fewshot_as_multiturn"]
    assert cfg.system_instruction == kw["system_instruction"]
    assert (cfg.gen_kwargs or None) == kw["gen_kwargs"]
    assert cfg.include_path == inv.include_path


def test_unset_settings_take_the_cli_defaults() -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="arc_easy"), ARGS, None)
    assert inv.batch_size == 1
    assert inv.seeds == (0, 1234, 1234, 1234)
    assert inv.bootstrap_iters == 100000
    assert inv.num_fewshot is None  # the task's own default, as without --num_fewshot
    assert inv.apply_chat_template is False
    assert inv.fewshot_as_multiturn is None
    cmd = inv.command()
    assert cmd.startswith("lm_eval run --model local-completions --model_args ")
    assert "--num_fewshot" not in cmd and "--limit" not in cmd and "#" not in cmd
    assert "--batch_size 1 --seed 0,1234,1234,1234" in cmd
    _assert_cli_matches(inv)


def test_model_args_travel_as_json_so_commas_and_types_survive() -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="arc_easy"), ARGS, None)
    cfg = _cli_config(inv.command())
    assert cfg.model_args["tokenizer"] == "/models/tiny, mistral"
    assert cfg.model_args["add_bos_token"] is True
    assert cfg.model_args["max_length"] == 4096
    assert cfg.model_args["tokenized_requests"] is True


def test_suite_and_task_settings_reach_lm_eval_as_the_cli_passes_them() -> None:
    spec = AccuracySpec(
        batch_size=8,
        num_concurrent=4,
        seed=[1, 2, None, 4],
        apply_chat_template=True,
        system_instruction="Answer briefly.",
        gen_kwargs={"temperature": 0, "max_gen_toks": 64},
        tasks=[
            TaskSpec(name="gsm8k", num_fewshot=5, limit=0.25, gen_kwargs={"max_gen_toks": 32}),
            TaskSpec(name="arc_easy", limit=100, apply_chat_template="chatml", fewshot_as_multiturn=False),
        ],
    )
    args = {**ARGS, "num_concurrent": 4}
    gsm = resolve_invocation(spec, spec.tasks[0], args, "/runs/x/tasks")
    assert gsm.limit == 0.25 and gsm.num_fewshot == 5 and gsm.batch_size == 8
    assert gsm.fewshot_as_multiturn is True  # the CLI's default with a chat template
    assert gsm.gen_kwargs == {"temperature": 0, "max_gen_toks": 32}
    assert "--limit 0.25" in gsm.command() and "--apply_chat_template " in gsm.command() + " "
    _assert_cli_matches(gsm)
    arc = resolve_invocation(spec, spec.tasks[1], args, "/runs/x/tasks")
    assert arc.apply_chat_template == "chatml" and arc.fewshot_as_multiturn is False
    assert "--limit 100 " in arc.command() and "--fewshot_as_multiturn false" in arc.command()
    _assert_cli_matches(arc)


def test_bootstrap_iters_without_a_cli_flag_is_said_in_the_command() -> None:
    inv = resolve_invocation(AccuracySpec(bootstrap_iters=1000), TaskSpec(name="arc_easy"), ARGS, None)
    assert inv.simple_evaluate_kwargs()["bootstrap_iters"] == 1000
    assert "# bootstrap_iters=1000 has no CLI flag" in inv.command()
    _assert_cli_matches(inv)


def test_limit_is_a_count_or_a_fraction() -> None:
    assert TaskSpec(name="t", limit=0.1).limit == 0.1
    assert TaskSpec(name="t", limit=10).limit == 10
    with pytest.raises(ValueError, match="whole number"):
        TaskSpec(name="t", limit=2.5)


def test_multiturn_without_chat_template_is_refused_at_load() -> None:
    text = "name: s\naccuracy:\n  fewshot_as_multiturn: true\n  tasks: [arc_easy]\n"
    with pytest.raises(SuiteError, match="fewshot_as_multiturn needs apply_chat_template"):
        parse_suite(text)


def _lm_eval_output(**over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "results": {
            "gsm8k": {
                "alias": "gsm8k",
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.05,
                "exact_match,flexible-extract": 0.5,
                "exact_match_stderr,flexible-extract": 0.06,
            }
        },
        "higher_is_better": {"gsm8k": {"exact_match": True}},
        "n-samples": {"gsm8k": {"original": 1319, "effective": 40}},
        "n-shot": {"gsm8k": 5},
        "versions": {"gsm8k": 3.0},
    }
    out.update(over)
    return out


def test_headline_keeps_its_filter_and_every_figure_is_lm_evals() -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="gsm8k", num_fewshot=5, limit=40), ARGS, None)
    r = task_results(_lm_eval_output(), inv)["gsm8k"]
    assert r.metric == "exact_match,strict-match"
    assert (r.value, r.stderr) == (0.25, 0.05)
    assert r.metrics["exact_match,flexible-extract"] == 0.5
    assert (r.n_samples, r.num_fewshot, r.higher_is_better, r.version) == (40, 5, True, "3.0")
    assert r.lm_eval_command == inv.command()


def test_what_lm_eval_does_not_report_is_null() -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="gsm8k"), ARGS, None)
    r = task_results(_lm_eval_output(**{"higher_is_better": {}, "n-samples": {}, "n-shot": {}}), inv)["gsm8k"]
    assert r.n_samples is None and r.num_fewshot is None and r.higher_is_better is None


def test_group_counts_its_subtasks_samples() -> None:
    out = {
        "results": {
            "grp": {"acc,none": 0.5, "acc_stderr,none": 0.1},
            "a": {"acc,none": 0.4},
            "b": {"acc,none": 0.6},
        },
        "group_subtasks": {"grp": ["a", "b"]},
        "n-samples": {"a": {"original": 10, "effective": 10}, "b": {"original": 20, "effective": 20}},
    }
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="grp"), ARGS, None)
    r = task_results(out, inv)["grp"]
    assert (r.metric, r.value, r.n_samples) == ("acc,none", 0.5, 30)


def test_a_task_without_metrics_is_an_error() -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="t"), ARGS, None)
    with pytest.raises(AccuracyError, match="no metric"):
        task_results({"results": {"t": {"alias": "t", "acc,none": float("nan")}}}, inv)


def test_bos_follows_the_tokenizer(tmp_path: Path) -> None:
    from harness.accuracy.lmeval import tokenizer_adds_bos
    from harness.model.checkpoints import _mistral_v1_tokenizer

    _mistral_v1_tokenizer(tmp_path / "bos", add_bos=True)
    _mistral_v1_tokenizer(tmp_path / "nobos", add_bos=False)
    _mistral_v1_tokenizer(tmp_path / "qwenlike", add_bos=False, has_bos=False)
    assert tokenizer_adds_bos(str(tmp_path / "bos")) is True
    assert tokenizer_adds_bos(str(tmp_path / "nobos")) is False
    assert tokenizer_adds_bos(str(tmp_path / "qwenlike")) is False


def test_preflight_reads_user_tasks_and_names_missing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.accuracy import DatasetUnavailableError, preflight_datasets

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    user = tmp_path / "my_tasks"
    user.mkdir()
    (user / "data.jsonl").write_text('{"q": "1+1", "a": "2"}\n')
    base = "dataset_path: json\noutput_type: generate_until\ntest_split: test\n"
    base += 'doc_to_text: "{{q}}"\ndoc_to_target: "{{a}}"\nmetric_list:\n  - metric: exact_match\n'
    (user / "ok.yaml").write_text(
        f"task: my_ok\n{base}dataset_kwargs:\n  data_files:\n    test: {user / 'data.jsonl'}\n"
    )
    (user / "gone.yaml").write_text(
        f"task: my_gone\n{base}dataset_kwargs:\n  data_files:\n    test: /nowhere/x.jsonl\n"
    )
    (user / "hub.yaml").write_text(
        "task: my_hub\ndataset_path: someone/not-cached\n" + base.split("\n", 1)[1]
    )
    run_tasks = tmp_path / "run" / "tasks"
    probes: list[int] = []

    def offline() -> bool:
        probes.append(1)
        return False

    preflight_datasets(
        [TaskSpec(name="my_ok"), TaskSpec(name="harness_capitals")], run_tasks, (str(user),), offline
    )
    assert not probes  # everything was local: the Hub was never probed
    assert (run_tasks / "include-0-my_tasks" / "ok.yaml").is_file()  # the run keeps the definitions
    with pytest.raises(DatasetUnavailableError) as err:
        preflight_datasets(
            [TaskSpec(name="my_gone"), TaskSpec(name="my_hub")], run_tasks, (str(user),), offline
        )
    msg = str(err.value)
    assert "my_gone" in msg and "/nowhere/x.jsonl" in msg
    assert "huggingface-cli download --repo-type dataset someone/not-cached" in msg and "HF_HOME" in msg
    assert probes == [1]  # probed once, only for the dataset that is not here
    preflight_datasets([TaskSpec(name="my_hub")], run_tasks, (str(user),), lambda: True)  # online: fine
    with pytest.raises(AccuracyError, match="knows no task 'my_okk'.*did you mean my_ok"):
        preflight_datasets([TaskSpec(name="my_okk")], run_tasks, (str(user),), offline)


def test_task_index_is_built_once_per_task_folder_content(tmp_path, monkeypatch) -> None:
    from harness.accuracy import lmeval

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(lmeval, "_MANAGERS", {})
    built: list[str] = []

    class FakeManager:
        def __init__(self, include_path: str) -> None:
            built.append(include_path)

    import lm_eval.tasks

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", FakeManager)
    a = lmeval.prepare_task_folder(tmp_path / "run-a" / "tasks")
    b = lmeval.prepare_task_folder(tmp_path / "run-b" / "tasks")
    assert lmeval.task_manager(str(a)) is lmeval.task_manager(str(b))  # two runs, one index
    [canonical] = built
    assert canonical.startswith(str(tmp_path / "cache")) and lmeval.folder_digest(Path(canonical)) == (
        lmeval.folder_digest(a)
    )
    user = tmp_path / "mine"
    user.mkdir()
    (user / "t.yaml").write_text("task: mine\n")
    c = lmeval.prepare_task_folder(tmp_path / "run-c" / "tasks", [str(user)])
    assert lmeval.task_manager(str(c)) is not lmeval.task_manager(str(a)) and len(built) == 2
    (tmp_path / "run-a").rename(tmp_path / "gone")  # a run folder may go; the index does not point into it
    assert all(not p.startswith(str(tmp_path / "run-")) for p in built)
