"""bench: transfer-learning benchmarks across deep-learning frameworks."""

__version__ = "0.1.0"
