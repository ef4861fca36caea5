"""Result records: one schema, one builder, one loader and one writer (``store``), and the
check every loaded run record passes (``schema``). Above ``bench.plan`` (a record holds a
``RunConfig``), below everything that runs or reads sweeps."""
