"""The benchmarks' samples: several measuring processes per benchmark (``--benchmark-processes``), kept by
``bench.report.pytest_gate.time_processes`` (the suite's pytest plugin) for ``--benchmark-gate``."""
