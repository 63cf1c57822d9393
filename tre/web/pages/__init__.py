"""Console pages, one module per audience; each has `register(router)`."""
