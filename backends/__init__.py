"""Framework backends behind one protocol (``backends.base``), found through one lazy
registry (``backends.registry``); ``backends.settings`` gives each its runtime settings.

Add a backend: ``backends/<name>_backend.py`` (``Backend`` and ``Model``, its reference
loop), ``backends/<name>_models.py`` (its builders), one ``BackendInfo`` line in
``backends/registry.py:REGISTRY`` and its pip extra in ``pyproject.toml``.
"""
