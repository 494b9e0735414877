"""Analysis of records: comparisons, and techniques against their baseline."""
