"""Measuring: step timing and contention, the machine and software a number was taken on,
and the statistics of accuracies. Framework-free; imports only ``bench.core``."""
