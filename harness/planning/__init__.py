"""Planning: specs and models become runs and cells, purely, before any hardware is touched."""
