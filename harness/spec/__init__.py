"""What to run: suites, scenarios and variants as validated specs (no I/O beyond reading the suite)."""
