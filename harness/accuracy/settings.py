"""How each task is handed to lm-eval, and the `lm_eval` command line that does the same (pure).

lm-eval 0.4.13's CLI defaults are mirrored as constants, so that planning needs no lm-eval
import; ``tests/unit/test_accuracy.py`` checks them against the installed lm-eval.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from harness.spec.suite import AccuracySpec, TaskSpec

# `lm_eval run` defaults (lm_eval/config/evaluate_config.py and evaluator.simple_evaluate).
LM_EVAL_CLI_SEEDS: tuple[int | None, ...] = (0, 1234, 1234, 1234)
LM_EVAL_CLI_BATCH_SIZE = 1
# The CLI has no flag for it: simple_evaluate's default is what every CLI run uses.
LM_EVAL_CLI_BOOTSTRAP_ITERS = 100000
LM_EVAL_MODEL = "local-completions"


@dataclass(frozen=True)
class TaskInvocation:
    """One task's lm-eval call, resolved: suite settings, else the CLI's defaults."""

    task: str
    model_args: dict[str, Any]
    num_fewshot: int | None
    limit: float | None
    batch_size: int
    seeds: tuple[int | None, ...]
    bootstrap_iters: int
    include_path: str | None
    apply_chat_template: bool | str
    fewshot_as_multiturn: bool | None
    system_instruction: str | None
    gen_kwargs: dict[str, Any] | None = field(default=None)

    def simple_evaluate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``lm_eval.simple_evaluate``, as `lm_eval run` passes them."""
        return {
            "model": LM_EVAL_MODEL,
            "model_args": dict(self.model_args),
            "tasks": [self.task],
            "num_fewshot": self.num_fewshot,
            "limit": self.limit,
            # The CLI's --batch_size is a string; local-completions applies int() to it.
            "batch_size": str(self.batch_size),
            "random_seed": self.seeds[0],
            "numpy_random_seed": self.seeds[1],
            "torch_random_seed": self.seeds[2],
            "fewshot_random_seed": self.seeds[3],
            "bootstrap_iters": self.bootstrap_iters,
            "system_instruction": self.system_instruction,
            "apply_chat_template": self.apply_chat_template,
            "fewshot_as_multiturn": self.fewshot_as_multiturn,
            "gen_kwargs": dict(self.gen_kwargs) if self.gen_kwargs else None,
        }

    def command(self) -> str:
        """The `lm_eval` command line that evaluates the same task the same way (shell-quoted)."""
        argv = [
            "lm_eval",
            "run",
            "--model",
            LM_EVAL_MODEL,
            "--model_args",
            json.dumps(self.model_args, separators=(",", ":")),
            "--tasks",
            self.task,
        ]
        if self.include_path:
            argv += ["--include_path", self.include_path]
        if self.num_fewshot is not None:
            argv += ["--num_fewshot", str(self.num_fewshot)]
        argv += ["--batch_size", str(self.batch_size)]
        if self.limit is not None:
            argv += ["--limit", f"{self.limit:g}"]
        argv += ["--seed", ",".join("None" if s is None else str(s) for s in self.seeds)]
        if self.apply_chat_template is True:
            argv.append("--apply_chat_template")
        elif self.apply_chat_template:
            argv += ["--apply_chat_template", str(self.apply_chat_template)]
        # With a chat template the CLI turns multi-turn few-shot on by itself.
        if self.fewshot_as_multiturn is not None and not (
            self.apply_chat_template and self.fewshot_as_multiturn
        ):
            argv += ["--fewshot_as_multiturn", str(self.fewshot_as_multiturn).lower()]
        if self.system_instruction is not None:
            argv += ["--system_instruction", self.system_instruction]
        if self.gen_kwargs:
            argv += ["--gen_kwargs", json.dumps(self.gen_kwargs, separators=(",", ":"))]
        line = shlex.join(argv)
        if self.bootstrap_iters != LM_EVAL_CLI_BOOTSTRAP_ITERS:
            line += (
                f"  # bootstrap_iters={self.bootstrap_iters} has no CLI flag: the CLI uses "
                f"{LM_EVAL_CLI_BOOTSTRAP_ITERS}, so bootstrapped stderrs differ"
            )
        return line


def resolve_invocation(
    spec: AccuracySpec, task: TaskSpec, model_args: dict[str, Any], include_path: str | None
) -> TaskInvocation:
    """The task's settings over the suite's, over the `lm_eval` CLI's defaults."""
    chat = task.apply_chat_template if task.apply_chat_template is not None else spec.apply_chat_template
    turns = task.fewshot_as_multiturn if task.fewshot_as_multiturn is not None else spec.fewshot_as_multiturn
    if turns is None and chat:  # the CLI's rule: multi-turn few-shot by default with a chat template
        turns = True
    gen = {**(spec.gen_kwargs or {}), **(task.gen_kwargs or {})} or None
    return TaskInvocation(
        task=task.name,
        model_args=dict(model_args),
        num_fewshot=task.num_fewshot,
        limit=float(task.limit) if task.limit is not None else None,
        batch_size=spec.batch_size or LM_EVAL_CLI_BATCH_SIZE,
        seeds=tuple(spec.seed) if spec.seed is not None else LM_EVAL_CLI_SEEDS,
        bootstrap_iters=spec.bootstrap_iters
        if spec.bootstrap_iters is not None
        else LM_EVAL_CLI_BOOTSTRAP_ITERS,
        include_path=include_path,
        apply_chat_template=chat,
        fewshot_as_multiturn=turns,
        system_instruction=task.system_instruction
        if task.system_instruction is not None
        else spec.system_instruction,
        gen_kwargs=gen,
    )
