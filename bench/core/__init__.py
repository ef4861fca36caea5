"""The suite's shared vocabulary: its errors and its records (one schema, one builder,
one loader, atomic writes). Imports nothing else of the suite; every layer may use it."""
