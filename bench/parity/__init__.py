"""Update parity: the protocol's training step in NumPy (no framework), and K steps of a backend
compared against it step by step (``bench parity``)."""
