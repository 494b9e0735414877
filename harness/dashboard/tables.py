"""Reading the per-run tables the pages chart: per-request latencies and GPU telemetry samples."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

REQUEST_COLUMNS = ("ttft_ms", "e2el_ms")
GPU_COLUMNS = ("t_s", "gpu_index", "power_w", "memory_used_bytes")
GPU_SAMPLES = Path("telemetry") / "gpu_samples.parquet"


class TableError(ValueError):
    """A table that exists but cannot be read; the message names the file."""


@lru_cache(maxsize=4096)  # a handful of distinct paths (requests/<scenario>.parquet) over thousands of runs
def safe_relative(rel: str) -> str | None:
    """``rel`` as a relative POSIX path that cannot leave its folder, or None if it would.

    Decided on the text alone (no absolute path, no drive, no ``..`` part): resolving every
    path through the file system cost more than reading the tables. Links inside a results
    folder are the user's own doing, not a record's.
    """
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or rel.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        return None
    return "/".join(parts)


def inside(run_dir: Path, rel: str) -> Path | None:
    """``run_dir / rel`` if it stays inside ``run_dir`` (a record's paths are data, not trusted)."""
    safe = safe_relative(rel)
    return run_dir / safe if safe is not None else None


def read_columns(path: Path, columns: tuple[str, ...]) -> dict[str, list[Any]] | None:
    """The named columns of a parquet file as lists (absent columns left out); None if there is no file.

    Raises TableError when the file exists but is not a readable parquet table.
    """
    if not path.is_file():
        return None
    import pyarrow.parquet as pq  # lazy: only run pages with tables need it

    try:
        # One open for schema and data (read_table's dataset layer costs more); these tables are
        # small, so pre-buffering and a thread pool cost more than they save.
        pf = pq.ParquetFile(path, pre_buffer=False)
        names = set(pf.schema_arrow.names)
        table = pf.read(columns=[c for c in columns if c in names], use_threads=False)
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError, ...)
        raise TableError(f"{path}: unreadable table: {exc}") from exc
    return {name: table.column(name).to_pylist() for name in table.column_names}
