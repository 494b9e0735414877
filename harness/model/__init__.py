"""Model identity: presets, Hub and local sources, weights on disk, checkpoints built here."""
