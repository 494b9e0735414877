"""Fuzz: any name a user or a copied record can give stays inside the results root (issue 28).

Names with ``../``, ``/``, NUL, Unicode and thousands of characters go through every path the
harness builds from a name: a run's folder (run id from model and suite, or a hostile run id),
its per-request table (scenario name), its lm-eval samples (task name), ``merge`` (a record's
run id) and ``baseline set`` (model, variant and suite names). After each example, every file
under the scratch folder must lie inside the results root, and nothing else may exist beside it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.accuracy.lmeval import task_results
from harness.accuracy.settings import resolve_invocation
from harness.record.run_record import VariantInfo
from harness.run.runner import new_run_id
from harness.safety.names import child, is_safe_component, path_component
from harness.spec.suite import AccuracySpec, TaskSpec
from harness.storage.baseline import baseline_path, find_baseline, set_baseline
from harness.storage.fallback import make_run_dir
from harness.storage.merge import merge_results
from harness.storage.store import load_records, runs_dir, write_record
from tests.factories import make_record
from tests.unit.test_accuracy import ARGS

HOSTILE = st.sampled_from(
    [
        "..",
        ".",
        "../../../../ESCAPED/rel",
        "/abs/path",
        "/etc/passwd",
        "../../other-run/requests/c1",
        "a/../../b",
        "a\x00b",
        "\x00",
        "x" * 5000,
        "é/ü/😀",
        "..\\..\\win",
        " ",
        "-rf",
        ".hidden",
        "my-model",
        "My_Model",
    ]
)
NAMES = st.one_of(HOSTILE, st.text(min_size=1, max_size=300), st.text(alphabet="./\x00ab", min_size=1))


def _files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(root) for f in files]


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES)
def test_every_path_built_from_a_name_stays_inside_the_results_root(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        results = base / "results"
        # run folders: the runner's run id from model and suite names, and a hostile id as such
        run_dir = make_run_dir(runs_dir(results), new_run_id(name, name))
        hostile_dir = make_run_dir(runs_dir(results), name)
        # the per-request table of a scenario with this name (the path scenario_run builds)
        table = child(run_dir / "requests", name, suffix=".parquet")
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_bytes(b"PAR1")
        # lm-eval samples of a task with this name
        out = {"results": {name: {"acc,none": 0.5}}, "samples": {name: [{"doc_id": 0}]}}
        inv = resolve_invocation(AccuracySpec(), TaskSpec(name=name), ARGS, None)
        samples = run_dir / "samples"
        samples.mkdir()
        [res] = task_results(out, inv, samples, run_dir).values()
        assert res.name == name  # the display name stays as written
        assert res.samples_path is not None and _inside(run_dir / res.samples_path, run_dir)
        # merge: a record from elsewhere whose run id is this name
        src = base / "src" / "runs" / "one"
        record = make_record(run_id=name, suite="smoke")
        write_record(src, record)
        (src / "engine.log").write_text("log\n")
        report = merge_results([base / "src"], results)
        assert report.count("added") + report.count("invalid") == 1
        if report.count("added"):
            assert [r.run_id for r in load_records(results).records if r.run_id == name] == [name]
        # baseline: model, variant and suite named so
        variant = VariantInfo(name=name, baseline="base", is_baseline=False, changes=[], spec={})
        rec = make_record(model_info={"preset": name}, suite="smoke").model_copy(
            update={"variant": variant, "suite": record.suite.model_copy(update={"name": name})}
        )
        path, _ = set_baseline(results, rec)
        assert path == baseline_path(results, rec) and _inside(path, results / "baselines")
        assert find_baseline(results, rec) == rec

        for p in (run_dir, hostile_dir, table):
            assert _inside(p, results), p
        for f in _files(base):
            assert _inside(f, results) or _inside(f, base / "src"), f"{f} escaped {results}"
        assert sorted(os.listdir(base)) == ["results", "src"]


@settings(max_examples=200, deadline=None)
@given(a=NAMES, b=NAMES)
def test_different_names_never_share_a_file(a: str, b: str) -> None:
    """The slug carries a hash of the name, so two names give two files (``a b`` vs ``a/b``)."""
    ca, cb = path_component(a), path_component(b)
    assert is_safe_component(ca) and is_safe_component(cb)
    assert (ca == cb) == (a == b)
