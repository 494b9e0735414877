"""Engine processes and what they report (vLLM-specific code lives here)."""
