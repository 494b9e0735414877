"""How long `harness --help` takes, and which imports it pays for.

Runs `python -m harness.cli --help` and every subcommand's --help (the command table,
harness/cli.py) N times in fresh interpreters, prints the median and best wall time of each
against the 0.15 s target, then the top entries of `-X importtime` (cumulative microseconds)
for the top-level help and for the slowest subcommand's.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 10] [--top 12] [--commands gate,arch]

Figures from a busy shared machine are noisy: the best of N is the steadier one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.15
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def time_command(argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of `python -m harness.cli ARGV` in a fresh interpreter, `repeats` times."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harness.cli", *argv],
            env=_env(),
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        out.append(time.perf_counter() - t0)
    return out


def import_times(argv: list[str], top: int) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the `top` slowest imports of `harness ARGV`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "harness.cli", *argv],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, cum_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cum_us), int(self_us), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def commands() -> list[str]:
    """The subcommands of the checkout's command table, in its order."""
    proc = subprocess.run(
        [sys.executable, "-c", "from harness.cli import _COMMANDS; print(' '.join(_COMMANDS))"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.split()


def print_import_times(argv: list[str], top: int) -> None:
    rows = import_times(argv, 10_000)
    total = sum(own for _, own, _ in rows)
    harness_us = sum(own for _, own, name in rows if name.strip().startswith("harness"))
    print(
        f"\n-X importtime, harness {' '.join(argv)}: {total / 1000:.1f} ms of imports, "
        f"{harness_us / 1000:.1f} ms in harness.*"
    )
    print(f"top {top} by cumulative time")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cum, own, name in rows[:top]:
        print(f"{cum / 1000:>14.1f} {own / 1000:>8.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument(
        "--root", type=Path, help="time the harness of another checkout (e.g. before a change)"
    )
    parser.add_argument("--commands", help="comma-separated subcommands to time (default: all)")
    args = parser.parse_args()
    global ROOT
    ROOT = (args.root or ROOT).resolve()
    print(f"checkout: {ROOT}")
    bare = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        bare.append(time.perf_counter() - t0)
    print(f"bare interpreter start: median {statistics.median(bare):.3f} s, best {min(bare):.3f} s")
    print(f"{'command':<36} {'median s':>9} {'best s':>8} {'best - bare':>12}  target {TARGET_S} s")
    names = args.commands.split(",") if args.commands else commands()
    slowest: tuple[float, list[str]] = (0.0, ["--help"])
    for argv in [["--help"]] + [[name, "--help"] for name in names]:
        times = time_command(argv, args.repeats)
        med, best = statistics.median(times), min(times)
        verdict = "ok" if best < TARGET_S else "over"
        extra = best - min(bare)
        print(f"harness {' '.join(argv):<28} {med:>9.3f} {best:>8.3f} {extra:>12.3f}  {verdict}")
        if len(argv) > 1 and best > slowest[0]:
            slowest = (best, argv)
    print_import_times(["--help"], args.top)
    if slowest[1] != ["--help"]:
        print_import_times(slowest[1], args.top)


if __name__ == "__main__":
    main()
