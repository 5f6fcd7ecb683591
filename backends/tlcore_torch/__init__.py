"""tlcore's PyTorch backend. Importing this package imports no torch; see :mod:`tlcore_torch.plugin`."""
