"""The command line's conventions: help for users with an example, --json on every listing,
suggestions for typos, exit codes, clean pipes, a fast --help, and plan's fit check."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import _COMMANDS, build_parser, main
from tests.factories import make_record, write_run

ROOT = Path(__file__).resolve().parents[2]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_has_user_help_with_an_example() -> None:
    commands = _subparsers(build_parser())
    assert set(_COMMANDS) <= set(commands)
    for name, p in commands.items():
        text = p.format_help()
        assert ":mod:" not in text and "Nothing else lives here" not in text, name
        assert "example:" in text and "harness " in (p.epilog or ""), f"{name} has no example"
    top = build_parser("").format_help()
    assert "Nothing else lives here" not in top and "harness plan smoke" in top


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["rnus"], "did you mean runs?"),
        (["comapre", "a", "b"], "did you mean compare?"),
        (["runs", "--modle", "x"], "did you mean --model?"),
        (["plan", "smoke", "--jsno"], "did you mean --json?"),
    ],
)
def test_misspellings_get_a_suggestion(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    assert hint in capsys.readouterr().err


def _two_runs(tmp_path: Path) -> tuple[Path, list[str]]:
    ids = []
    for i, tput in enumerate((100.0, 120.0)):
        rec = make_record(
            "smollm2-135m",
            run_id=f"run-{i}",
            accuracy={"harness_capitals": (0.5, 0.01)},
            scenarios={"c1": {"output_throughput": tput, "median_ttft_ms": 40.0, "num_requests": 8}},
        )
        write_run(tmp_path, rec, requests=False)
        ids.append(rec.run_id)
    return tmp_path, ids


def test_listing_commands_take_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, ids = _two_runs(tmp_path)
    r = ["--results", str(results)]
    for argv in (
        ["models", "--json"],
        ["runs", "--json", *r],
        ["show", ids[0], "--json", *r],
        ["compare", *ids, "--json", *r],
        ["plan", "smoke", "--json"],
        ["baseline", "list", "--json", *r],
    ):
        assert main(argv) == 0, argv
        data = json.loads(capsys.readouterr().out)
        assert data or argv[0] == "baseline", argv
    models = json.loads((main(["models", "--json"]), capsys.readouterr().out)[1])
    assert any(m["hub_id"] == "mistralai/Mixtral-8x7B-v0.1" for m in models)  # whole hub ids
    cmp = json.loads((main(["compare", *ids, "--json", *r]), capsys.readouterr().out)[1])
    assert any(f["metric"] == "output_throughput" and f["deltas"] == [20.0] for f in cmp["figures"])
    assert cmp["noise_hints"] and "8 request(s)" in cmp["noise_hints"][0]


def test_compare_of_small_runs_says_it_is_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, ids = _two_runs(tmp_path)
    assert main(["compare", *ids, "--results", str(results)]) == 0
    assert "noise:" in capsys.readouterr().out


def test_exit_codes_for_missing_and_empty_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope")
    for argv in (
        ["runs", "--results", missing],
        ["runs", "--results", missing, "--json"],
        ["export", "--results", missing, "--out", str(tmp_path / "x")],
        ["baseline", "list", "--results", missing],
        ["gate", "--latest", "--results", missing],
        ["dashboard", "--results", missing, "--out", str(tmp_path / "d")],
    ):
        assert main(argv) == 2, argv
        assert "nope" in capsys.readouterr().err, argv
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    assert main(["runs", "--results", str(empty)]) == 0
    assert "no runs under" in capsys.readouterr().err
    assert main(["runs", "--results", str(empty), "--model", "x"]) == 0
    assert "match model 'x'" in capsys.readouterr().err
    assert main(["export", "--results", str(empty), "--out", str(tmp_path / "out")]) == 1
    assert "no runs" in capsys.readouterr().err and not (tmp_path / "out").exists()


def _harness(args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    cmd = f"{sys.executable} -m harness.cli {args}"
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_piping_into_head_is_clean() -> None:
    for args in ("models | head -1", "arch mixtral-8x7b --json | head -2", "plan smoke --json | head -2"):
        proc = _harness(args)
        assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, (args, proc.stderr)


def test_top_level_help_imports_no_command() -> None:
    code = (
        "import sys\nfrom harness.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'pydantic', 'numpy', 'harness.executors', 'harness.gate.cli') "
        "if m in sys.modules]\nprint(heavy)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_plan_refuses_a_run_that_cannot_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "standard", "--model", "mixtral-8x7b", "--gpu", "L4"]) == 3
    captured = capsys.readouterr()
    assert "DOES NOT FIT" in captured.out and "smallest that fits: tensor_parallel_size 8" in captured.err
    assert main(["plan", "standard", "--model", "mistral-7b", "--gpu", "H100-SXM"]) == 0
    out = capsys.readouterr().out
    assert "fit:     fits on 1 x H100-SXM" in out and "time:    ~" in out and "estimate" in out


def test_plan_json_carries_feasibility(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "standard", "--model", "mistral-7b", "--gpu", "H100-SXM", "--json"]) == 0
    [cell] = json.loads(capsys.readouterr().out)["cells"]
    f = cell["feasibility"]
    assert f["fits"] is True and f["gpu"] == "H100-SXM" and f["weight_bytes"] > 13e9


def test_run_refuses_before_starting_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    from harness.planning import feasibility

    real = feasibility.detect_gpus
    feasibility.detect_gpus = lambda: ["NVIDIA L4"]  # one L4 on this machine
    try:
        code = main(
            ["run", "standard", "--model", "mixtral-8x7b", "--results", str(results), "--no-progress"]
        )
    finally:
        feasibility.detect_gpus = real
    assert code == 3 and not results.exists()
    assert "will not fit" in capsys.readouterr().err


def test_served_model_name_needs_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "smoke", "--served-model-name", "foo"]) == 2
    assert "pass --endpoint too" in capsys.readouterr().err
    from harness.planning.cells import plan_cells
    from harness.spec.suite import load_suite

    [a] = plan_cells(load_suite("smoke"), endpoint="http://127.0.0.1:1")
    [b] = plan_cells(load_suite("smoke"), endpoint="http://127.0.0.1:1", served_model_name="foo")
    assert b.plan.endpoint_served_name == "foo" and a.fingerprint != b.fingerprint


def test_the_github_actions_example_runs_valid_commands() -> None:
    import re
    import shlex

    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    steps = workflow["jobs"]["eval"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert any(r.strip() == "make eval" for r in runs)
    harness_lines = [
        line.strip().rstrip("\\").strip()
        for r in runs
        for line in r.replace("\\\n", " ").splitlines()
        if ".venv/bin/harness" in line
    ]
    assert len(harness_lines) == 2  # gate, baseline set
    for line in harness_lines:
        argv = shlex.split(re.sub(r'"\$\{args\[@\]\}"', "", line.split(".venv/bin/harness", 1)[1]))
        args = build_parser().parse_args(argv)
        assert args.command in ("gate", "baseline")
        if args.command == "gate":
            assert args.junit == "gate.xml" and args.summary == "$GITHUB_STEP_SUMMARY" and args.latest
    names = " ".join(s.get("uses", "") for s in steps)
    assert "actions/cache/restore" in names and "actions/cache/save" in names


def test_models_keeps_hub_ids_whole_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    import harness.console

    monkeypatch.setattr(harness.console, "consoles", lambda: (Console(width=80), Console(stderr=True)))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mistralai/Mixtral-8x7B-v0.1" in out and "microsoft/Phi-3-mini-4k-instruct" in out


def test_gate_takes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, ids = _two_runs(tmp_path)
    assert main(["baseline", "set", ids[0], "--results", str(results)]) == 0
    capsys.readouterr()
    code = main(["gate", "--candidate", ids[1], "--results", str(results), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == code and report["status"] in ("PASS", "REGRESSION", "INCONCLUSIVE")
    assert report["baseline_run"] == ids[0] and report["comparisons"]
