"""Terminal views of results: `harness runs`, `show`, `compare`, the summary after a run."""
