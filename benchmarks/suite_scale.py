"""How long loading and planning a suite takes as it grows: linear, or not.

    python benchmarks/suite_scale.py [--sizes 5000,20000,100000] [--python-yaml]

For each size, writes a suite of that many scenarios and times, in CPU seconds (this process;
on a shared machine wall time also counts the others): reading the YAML within its budgets
(``harness.spec.yaml_load``), validating the SuiteSpec, the name/rate checks, planning and
describing the runs (what ``harness plan`` prints). The last column is microseconds per scenario:
a flat column is linear time. ``--python-yaml`` also times the loader this harness used before
(``yaml.compose`` then ``yaml.safe_load``, pure Python, the garbage collector running), the
super-linear one of issue 28.
"""

from __future__ import annotations

import argparse
import gc
import time

import yaml

from harness.planning.plan import describe, plan_runs
from harness.spec.suite import LoadedSuite, SuiteSpec
from harness.spec.yaml_load import check_suite, load_suite_yaml


def suite_text(n: int) -> str:
    rows = "".join(
        f"    - {{name: s{i}, num_requests: 2, concurrency: 1, input_tokens: 8, output_tokens: 8}}\n"
        for i in range(n)
    )
    return f"name: big\nmodels: [tiny-llama]\nperformance:\n  scenarios:\n{rows}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000,100000")
    ap.add_argument("--python-yaml", action="store_true", help="also time the old pure-Python double parse")
    args = ap.parse_args()
    print(
        f"{'scenarios':>10} {'yaml_s':>8} {'validate_s':>10} {'check_s':>8} {'plan_s':>7} {'total_s':>8} {'us/scen':>8}"
        + ("  old_yaml_s" if args.python_yaml else "")
    )
    for n in (int(x) for x in args.sizes.split(",")):
        text = suite_text(n)
        c = time.process_time
        t0 = c()
        node, data = load_suite_yaml(text)
        t1 = c()
        spec = SuiteSpec.model_validate(data)
        t2 = c()
        check_suite(spec, lambda loc: 1)
        t3 = c()
        plans = plan_runs(LoadedSuite(spec=spec, path=None, sha256=None))
        for p in plans:
            describe(p)
        t4 = c()
        old = ""
        if args.python_yaml:
            gc.collect()
            o0 = c()
            yaml.compose(text)
            yaml.safe_load(text)
            old = f"  {c() - o0:10.2f}"
        total = t4 - t0
        print(
            f"{n:>10} {t1 - t0:8.2f} {t2 - t1:10.2f} {t3 - t2:8.2f} {t4 - t3:7.2f} {total:8.2f} {total / n * 1e6:8.1f}{old}",
            flush=True,
        )


if __name__ == "__main__":
    main()
