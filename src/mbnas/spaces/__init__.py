"""Architecture languages, one folder each (``mbnas/`` is the paper's), and the space registry."""
