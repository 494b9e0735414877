"""The command line's own pieces: the parser class that suggests, JSON and pipe helpers, the core
commands (models, plan, run, merge) and the example shown under every command's help."""
