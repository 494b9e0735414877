"""The noise floor a gate works against: run-to-run spread of throughput and TPOT.

Runs the harness itself (one vLLM CPU server, or --endpoint) on one closed-loop scenario at
concurrency 1 and 8, each repeated N times on the same engine load, and prints per
concurrency: the coefficient of variation (sample std / mean, over repeats) of output tok/s
and of median TPOT, with the Student-t 95 % interval of each mean. A regression threshold
below these CVs would flag noise.

    flock /tmp/harness-engine.lock .venv/bin/python benchmarks/noise_floor.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.planning.plan import plan_runs
from harness.run.runner import execute
from harness.spec.suite import LoadedSuite, parse_suite

SUITE = """
name: noise-floor
models: [{model}]
engine: {{max_model_len: 1024}}
performance:
  repeats: {repeats}
  cooldown_s: {cooldown}
  scenarios:
    - name: nf
      input_tokens: {input_tokens}
      output_tokens: {output_tokens}
      num_requests: {requests}
      warmup_requests: 2
      concurrency: [1, 8]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--endpoint", help="use this running server instead of starting one")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=16, help="measured requests per repeat")
    ap.add_argument("--input-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--cooldown", type=float, default=2.0)
    ap.add_argument("--results", default=None, help="results folder (default: a temporary one)")
    args = ap.parse_args()

    text = SUITE.format(
        model=args.model,
        repeats=args.repeats,
        cooldown=args.cooldown,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        requests=args.requests,
    )
    suite = LoadedSuite(spec=parse_suite(text, source="noise_floor.py"), path=None, sha256=None)
    results = Path(args.results or tempfile.mkdtemp(prefix="noise-floor-"))
    (plan,) = plan_runs(suite, endpoint=args.endpoint)
    print(
        f"running {args.repeats} repeats at concurrency 1 and 8 on {args.model}; results in {results}",
        flush=True,
    )
    record = execute(plan, results)
    if record.status != "ok":
        raise SystemExit(f"run failed: {record.error}")
    print(
        f"\nrun {record.run_id}: {args.requests} requests × {args.input_tokens} in / {args.output_tokens} out"
    )
    header = f"{'point':>8} {'n':>2} {'out tok/s mean':>15} {'95% CI':>17} {'CV':>6}"
    header += f" {'median TPOT ms':>15} {'95% CI':>17} {'CV':>6}  valid"
    print(header)
    for name, sr in record.performance.items():
        assert sr.rigor is not None
        cells = [f"{name.split('@')[-1]:>8} {len(sr.rigor.repeats):>2}"]
        for key in ("output_throughput", "median_tpot_ms"):
            s = sr.rigor.spread[key]
            cv = (s.std / s.mean) if s.std is not None and s.mean else float("nan")
            ci = f"[{s.ci95_low:.2f}, {s.ci95_high:.2f}]" if s.ci95_low is not None else "-"
            cells.append(f"{s.mean:>15.2f} {ci:>17} {cv:>6.1%}")
        print(" ".join(cells) + f"  {sr.valid}{'' if sr.valid else ' ' + '; '.join(sr.validity_reasons)}")


if __name__ == "__main__":
    main()
