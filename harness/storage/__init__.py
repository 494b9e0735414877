"""The results store: atomic writes, tolerant reads, merge, baselines, tables for notebooks."""
