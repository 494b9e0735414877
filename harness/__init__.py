"""harness: accuracy, speed, memory and energy of open LLMs from one vLLM load.

Importing this package is cheap: no torch, vLLM, lm-eval or plotly until a function needs them.
"""

__version__ = "0.1.0"
