"""Shared checks a plugin (or the suite) runs on its parts, as ``optuna.testing``.

One module per kind of part; :mod:`mbnas.testing.scoring` checks a scoring method.
"""
