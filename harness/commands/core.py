"""`harness models`, `plan`, `run` and `merge`: parse, call the Python API, print."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.commands.parsing import add_json_flag, print_json

_SUITE_HELP = "suite name (smoke, standard, techniques-cpu, ...) or a suite YAML file"
_MODEL_HELP = "preset name (see `harness models`), Hub id or checkpoint folder; repeatable"
_ENDPOINT_GPUS_HELP = (
    "GPU UUIDs (nvidia-smi -L) that the --endpoint server runs on, comma-separated; "
    "without it an endpoint's GPU energy and memory are null"
)
_SERVED_HELP = (
    "with --endpoint: the model name the server answers to (vllm serve --served-model-name); "
    "default: the preset name, Hub id or path, whichever it serves"
)


def _consoles() -> tuple[Any, Any]:
    from harness.console import consoles

    return consoles()


def cmd_models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from harness.model.presets import PRESETS

    if args.json:
        print_json([p.model_dump(mode="json") for p in PRESETS.values()])
        return 0
    console, _ = _consoles()
    table = Table(title="Model presets")
    table.add_column("name", no_wrap=True)
    table.add_column("family")
    table.add_column("source")
    # Hub ids are copied into other commands: never cut them (engine args wrap instead).
    width = max((len(p.hub_id or "-") for p in PRESETS.values()), default=1)
    table.add_column("hub id", no_wrap=True, min_width=width)
    table.add_column("engine args")
    table.add_column("features")
    for p in PRESETS.values():
        table.add_row(
            p.name,
            p.family,
            p.source + (" (gated)" if p.gated else ""),
            p.hub_id or "-",
            " ".join(p.engine.as_cli()),
            ", ".join(p.features),
        )
    console.print(table)
    return 0


def _gpu_list(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(g.strip() for g in (args.endpoint_gpus or "").split(",") if g.strip())


def _check_served(args: argparse.Namespace) -> None:
    if args.served_model_name and not args.endpoint:
        raise ValueError("--served-model-name names the model of an --endpoint; pass --endpoint too")


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.planning.cells import cells_json, plan_cells
    from harness.planning.feasibility import assess_cells, describe_assessment, refusal
    from harness.planning.plan import describe
    from harness.spec.suite import load_suite

    _check_served(args)
    suite = load_suite(args.suite)
    cells = plan_cells(
        suite,
        args.model or None,
        endpoint=args.endpoint,
        endpoint_gpus=_gpu_list(args),
        served_model_name=args.served_model_name,
    )
    assessments = assess_cells(cells, gpu=args.gpu)
    refused = [r for a in assessments if (r := refusal(a))]
    if args.json:
        data = cells_json(suite, cells)
        for item, a in zip(data["cells"], assessments, strict=True):
            item["feasibility"] = a.model_dump(mode="json")
        print_json(data)
        return 3 if refused else 0
    console, err = _consoles()
    for cell, a in zip(cells, assessments, strict=True):
        lines = describe(cell.plan)
        lines.insert(1, f"  cell:    {cell.index} (fingerprint {cell.fingerprint})")
        lines += describe_assessment(a)
        lines += _measured_before(Path(args.results), cell.plan.model.name, suite.spec.name)
        console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
    console.print(f"{len(cells)} run(s) planned; nothing was started.", highlight=False)
    for reason in refused:
        err.print(f"[bold red]will not fit:[/] {reason}", highlight=False, soft_wrap=True)
    return 3 if refused else 0


def _measured_before(results: Path, model: str, suite: str) -> list[str]:
    """What earlier ok runs of this model and suite took (measured, unlike the estimate)."""
    if not (results / "runs").is_dir():
        return []
    import statistics
    import warnings

    from harness.analysis.tables import select_runs
    from harness.record.hardware import hardware_label

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = select_runs(results, model=model, suite=suite, status="ok")
    if not runs:
        return []
    last = runs[-1]
    median = statistics.median(r.duration_s for r in runs)
    return [
        f"  measured: {len(runs)} earlier ok run(s) in {results} took a median {median:,.0f} s "
        f"(the last: {last.duration_s:,.0f} s on {hardware_label(last.environment)}, {last.run_id})"
    ]


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from harness.api import run_campaign
    from harness.commands.report import print_summary
    from harness.executors.base import CellEvent, describe_event

    _check_served(args)
    console, err_console = _consoles()
    if not args.endpoint and not args.no_fit_check:
        from harness.planning.cells import plan_cells
        from harness.planning.feasibility import assess_cells, refusal
        from harness.spec.suite import load_suite

        cells = plan_cells(load_suite(args.suite), args.model or None)
        refused = [r for a in assess_cells(cells) if (r := refusal(a))]
        if refused:
            for reason in refused:
                err_console.print(f"[bold red]will not fit:[/] {reason}", highlight=False, soft_wrap=True)
            err_console.print("nothing was started (--no-fit-check runs it anyway)", highlight=False)
            return 3

    def on_event(event: CellEvent) -> None:
        # The local executor draws progress bars for its one running cell; a cluster's cells get lines.
        if args.executor == "local" and event.state == "failed":
            # The summary below prints the reason once; here only that the cell failed.
            event = dataclasses.replace(event, detail="the reason follows with its record")
        if args.executor != "local" or event.state in ("skipped", "failed"):
            err_console.print(describe_event(event), highlight=False, soft_wrap=True)

    campaign = run_campaign(
        args.suite,
        models=args.model or None,
        results=Path(args.results),
        endpoint=args.endpoint,
        progress=not args.no_progress,
        executor=args.executor,
        ray_address=args.ray_address,
        cell=args.cell,
        resume=args.resume,
        on_event=on_event,
        endpoint_gpus=_gpu_list(args),
        served_model_name=args.served_model_name,
    )
    records = campaign.records
    print_summary(records, Path(args.results), console)
    if args.resume:
        done = len(campaign.skipped)
        if not records:
            console.print(
                f"nothing to run: all {done} cell(s) already have an ok record in {args.results} (--resume)"
            )
        else:
            console.print(f"resumed: ran {len(records)} cell(s), skipped {done} with an ok record")
    return 0 if all(r.status == "ok" for r in records) else 1


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.storage.merge import merge_results

    console, _ = _consoles()
    report = merge_results([Path(d) for d in args.dirs], Path(args.results))
    for item in report.items:
        if item.outcome != "added" or args.verbose:
            console.print(f"{item.outcome}: {item.source}" + (f" ({item.detail})" if item.detail else ""))
    console.print(f"merged into {args.results}: {report.summary()}", highlight=False)
    return 0 if report.ok else 1


def _endpoint_args(p: argparse.ArgumentParser, endpoint_help: str) -> None:
    p.add_argument("--endpoint", metavar="URL", help=endpoint_help)
    p.add_argument("--endpoint-gpus", metavar="UUID,...", help=_ENDPOINT_GPUS_HELP)
    p.add_argument("--served-model-name", metavar="NAME", help=_SERVED_HELP)


def register(sub: Any) -> None:
    """Add models, plan, run and merge to the `harness` subparsers."""
    p = sub.add_parser("models", help="list the model presets", description="List the model presets.")
    add_json_flag(p, "every preset, all fields,")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "plan",
        help="show the runs a suite would make, whether they fit, and how long they take",
        description="Print every run a suite would make, with its fit on the GPU (weights + KV cache at "
        "the suite's context), the download size and a time estimate. Starts nothing. Exit 3: a run "
        "cannot fit (the reason and the smallest configuration that fits are printed).",
    )
    p.add_argument("suite", help=_SUITE_HELP)
    p.add_argument("--model", action="append", help=_MODEL_HELP)
    _endpoint_args(p, "measure an already-running OpenAI-compatible server at URL")
    p.add_argument(
        "--gpu", help="check fit against this GPU (e.g. H100-SXM, L4; see `harness arch`); default: detected"
    )
    p.add_argument(
        "--results",
        default="results",
        help="where earlier runs are, for their measured durations (default: results)",
    )
    add_json_flag(p, "the cells, their fingerprints and fit")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "run",
        help="run a suite: accuracy and performance from one engine load",
        description="Run a suite: start the engine once per model, measure accuracy (lm-eval) and "
        "performance, write one record per run under --results. Exit 0: every run ok; 1: a run failed; "
        "2: bad input; 3: a run cannot fit on this GPU.",
    )
    p.add_argument("suite", help=_SUITE_HELP)
    p.add_argument("--model", action="append", help=_MODEL_HELP)
    _endpoint_args(p, "base URL of an already-running OpenAI-compatible server (e.g. vllm serve)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-fit-check", action="store_true", help="start even when the plan says it will not fit"
    )
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where cells run (default: local)"
    )
    p.add_argument(
        "--ray-address", help="Ray cluster: auto (default), HOST:PORT or ray://HOST:10001 (--executor ray)"
    )
    p.add_argument("--cell", help="run one cell only, by index or fingerprint (see `harness plan --json`)")
    p.add_argument("--resume", action="store_true", help="skip cells that already have an ok record")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "merge",
        help="fold results folders (e.g. from a job array) into one store",
        description="Copy the runs of several results folders into one, skipping duplicates.",
    )
    p.add_argument("dirs", nargs="+", help="results folders, runs/ folders or run folders")
    p.add_argument("--results", default="results", help="store to merge into (default: results)")
    p.add_argument("--verbose", action="store_true", help="also list every run added")
    p.set_defaults(func=cmd_merge)
