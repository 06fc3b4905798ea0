"""The stages of a study, one folder each: what the API calls to run a command.

``common/`` holds what every stage shares (run folders, logs, preflight checks, the
dataset, live progress, estimates); ``search/``, ``evaluate/``, ``report/``, ``train/``
and ``demo/`` hold one stage each. :mod:`mbnas.reporting` stays the pure renderers.
"""
