"""`harness decide SUITE`: which (model, variant) to ship on each hardware label, at what cost.

Thin: parses prices and constraints, calls :func:`harness.decide.load.decisions_from_results`,
prints a table (default), ``--json`` or ``--markdown``, and with ``--page DIR`` writes the
Decision page (``DIR/decision.html``, opens offline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "decide",
        help="for one suite and hardware: accuracy, capacity, J and $ per token at the SLO, Pareto sets "
        "and a verdict per (model, variant)",
    )
    p.add_argument("suite", help="suite name as its records carry it (e.g. decide-cpu), or its YAML file")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="LABEL=USD/UNIT",
        help="a price: H100=3.50/h ($ per GPU-hour) or 'CPU=0.20/node-h' ($ per node-hour); LABEL matches "
        "the hardware label (exactly, else as a substring); repeatable. No price is built in.",
    )
    p.add_argument(
        "--prices", metavar="FILE", help="YAML: hardware label -> {usd_per_gpu_hour|usd_per_node_hour: X}"
    )
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        metavar="ABS",
        help="ship only rows within ABS (absolute accuracy) of the reference (default: not significantly below it)",
    )
    p.add_argument(
        "--slo",
        metavar="PRESET|ttft_ms=X,tpot_ms=Y",
        help="rank only capacities searched at this SLO (an MLPerf preset name or bounds in ms)",
    )
    p.add_argument(
        "--reference",
        metavar="MODEL@VARIANT",
        help="row to test the others against (default: the most accurate)",
    )
    p.add_argument("--hardware", help="only hardware labels containing this text")
    p.add_argument(
        "--scenario",
        help="for records without a capacity search: take throughput and energy at this fixed-load scenario "
        "(said so in every row: it is not a capacity at an SLO)",
    )
    p.add_argument(
        "--min-samples", type=int, default=30, help="documents a row needs to be ranked (default: 30)"
    )
    p.add_argument(
        "--min-effect",
        type=float,
        default=0.05,
        help="relative cost difference taken as a tie (default 0.05: 5 %%)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the decisions as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown (for a PR comment)")
    p.add_argument(
        "--page", metavar="DIR", help="also write the Decision page DIR/decision.html (opens offline)"
    )
    p.set_defaults(func=_cmd_decide)


def _slo(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    from pydantic import ValidationError

    from harness.spec.rigor import SloSpec

    raw: object = text
    if "=" in text:
        try:
            raw = {k.strip(): float(v) for k, v in (part.split("=", 1) for part in text.split(","))}
        except ValueError as exc:
            raise ValueError(f"--slo {text!r}: expected PRESET or ttft_ms=X,tpot_ms=Y ({exc})") from exc
    try:
        spec = SloSpec.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"--slo {text!r}: {exc.errors()[0]['msg']}") from exc
    return {
        k: v
        for k, v in (("ttft_ms", spec.ttft_ms), ("tpot_ms", spec.tpot_ms), ("e2el_ms", spec.e2el_ms))
        if v is not None
    }


def _cmd_decide(args: argparse.Namespace) -> int:
    from harness.console import consoles
    from harness.decide.load import DecideError, decisions_from_results
    from harness.decide.prices import PriceError, load_prices, parse_price
    from harness.decide.render import render_json, render_markdown, render_rich
    from harness.decide.verdicts import Constraints

    console, err = consoles()
    try:
        prices = [parse_price(t) for t in args.price]
        if args.prices:
            prices = load_prices(Path(args.prices)) + prices  # a --price overrides the file's
        constraints = Constraints(
            max_accuracy_drop=args.max_accuracy_drop,
            slo=_slo(args.slo),
            min_samples=args.min_samples,
            min_effect=args.min_effect,
        )
        suite = args.suite
        if (
            suite.endswith((".yaml", ".yml")) and Path(suite).is_file()
        ):  # a suite file: its records carry its name
            from harness.spec.suite import load_suite

            suite = load_suite(suite).spec.name
        decisions, problems = decisions_from_results(
            Path(args.results),
            suite,
            prices=prices,
            constraints=constraints,
            reference=args.reference,
            hardware=args.hardware,
            scenario=args.scenario,
        )
    except (PriceError, DecideError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    for line in problems:
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    if args.json:
        sys.stdout.write(render_json(decisions) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(decisions) + "\n")
    else:
        render_rich(decisions, console)
    if args.page:
        from harness.dashboard.decidepage import write_decision_page

        path = write_decision_page(decisions, Path(args.page))
        err.print(f"wrote {path}", highlight=False)
    return 0
