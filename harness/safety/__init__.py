"""File-system safety shared by every stage: one rule for names that become paths, kept inside their root."""
