"""Running one planned run: engine up, accuracy, load, telemetry, record written."""
