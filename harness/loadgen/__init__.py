"""Streaming load generation and vLLM-bench-style metrics."""
