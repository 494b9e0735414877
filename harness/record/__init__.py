"""The run record: its typed parts, energy and resource values, migrations of old versions."""
