"""Safety rules shared by every stage: names that reach the file system, bounded YAML, signals."""
