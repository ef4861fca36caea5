"""The suite's shared vocabulary: its errors, whole-or-nothing file writing, and the bounds
on an untrusted pickle. Imports nothing else of the suite; every layer may use it."""
