"""Analysis of records: comparisons, techniques against their baseline, terminal reports."""
