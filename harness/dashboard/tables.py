"""Reading the per-run tables the pages chart: per-request latencies and GPU telemetry samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REQUEST_COLUMNS = ("ttft_ms", "e2el_ms")
GPU_COLUMNS = ("t_s", "gpu_index", "power_w", "memory_used_bytes")
GPU_SAMPLES = Path("telemetry") / "gpu_samples.parquet"


class TableError(ValueError):
    """A table that exists but cannot be read; the message names the file."""


def inside(run_dir: Path, rel: str) -> Path | None:
    """``run_dir / rel`` if it stays inside ``run_dir`` (a record's paths are data, not trusted)."""
    base = run_dir.resolve()
    path = (base / rel).resolve()
    return path if path.is_relative_to(base) else None


def read_columns(path: Path, columns: tuple[str, ...]) -> dict[str, list[Any]] | None:
    """The named columns of a parquet file as lists (absent columns left out); None if there is no file.

    Raises TableError when the file exists but is not a readable parquet table.
    """
    if not path.is_file():
        return None
    import pyarrow.parquet as pq  # lazy: only run pages with tables need it

    try:
        pf = pq.ParquetFile(path)  # one open for schema and data; read_table's dataset layer costs more
        names = set(pf.schema_arrow.names)
        table = pf.read(columns=[c for c in columns if c in names])
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError, ...)
        raise TableError(f"{path}: unreadable table: {exc}") from exc
    return {name: table.column(name).to_pylist() for name in table.column_names}
