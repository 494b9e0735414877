"""Wall time of one two-cell campaign with `--executor local` and with `--executor ray`.

    flock /tmp/harness-engine.lock python benchmarks/ray_executor.py [--models tiny-llama tiny-mistral]

Runs the integration test's cut-down suite (one task of 4 documents, one 3-request scenario)
for two tiny models: first one after the other in this process's CLI, then as two Ray tasks on
a loopback cluster of two nodes (head + worker, 1 CPU each, 100 MB object store) started here
and stopped at the end. Prints the seconds of each and of each cell (from its record), and the
cluster start-up time. Loopback only: every Ray listener is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--models", nargs="+", default=["tiny-llama", "tiny-mistral"])
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from harness.storage.store import load_records
    from tests.integration.raycluster import LoopbackCluster
    from tests.integration.test_ray_executor import SUITE

    harness = str(Path(sys.executable).with_name("harness"))
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    suite = work / "raycamp.yaml"
    suite.write_text(
        SUITE.replace("models: [tiny-llama, tiny-mistral]", f"models: [{', '.join(args.models)}]")
    )
    cluster = LoopbackCluster()
    figures: dict[str, float] = {}
    try:
        for executor in ("local", "ray"):
            if executor == "ray":
                t0 = time.monotonic()
                cluster.start()
                figures["ray cluster start (2 nodes)"] = time.monotonic() - t0
            cmd = [harness, "run", str(suite), "--executor", executor, "--results", str(work / executor)]
            cmd += ["--no-progress"] + (["--ray-address", cluster.address] if executor == "ray" else [])
            t0 = time.monotonic()
            proc = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=1800)
            figures[f"campaign, --executor {executor}"] = time.monotonic() - t0
            print(
                f"campaign, --executor {executor}: {figures[f'campaign, --executor {executor}']:.1f} s",
                flush=True,
            )
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
                return 1
            for rec in load_records(work / executor).records:
                print(
                    f"  {executor}: {rec.model.preset} {rec.status} in {rec.duration_s:.1f} s ({rec.environment.hostname})"
                )
    finally:
        cluster.stop()
        cluster.cleanup()
    for name, seconds in figures.items():
        print(f"{name:34s} {seconds:7.1f} s")
    print(f"results kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
