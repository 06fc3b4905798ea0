"""How a batch of architectures gets its scores: registered scoring methods.

``train`` (:mod:`mbnas.scoring.train`) is the paper's: cross-validated training, with
racing and multi-fidelity probing as options.
"""
