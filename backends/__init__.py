"""Framework backends behind one protocol (see ``backends.base``).

Add a backend: write ``backends/<name>_backend.py`` with a class implementing
``Backend``, then add one line to ``REGISTRY`` in ``backends/base.py``.
"""
from .base import Backend, Model, LoadReport, get_backend, backend_names

__all__ = ["Backend", "Model", "LoadReport", "get_backend", "backend_names"]
