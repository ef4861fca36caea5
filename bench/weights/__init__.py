"""Weight files: the canonical ``.npz`` format every backend converts to and from, the
NumPy-only readers of untrusted checkpoints (``.pth``, ``.params``, ``.ckpt``), ImageNet
weights as canonical files, and the shared scratch initialisation. Framework-free."""
