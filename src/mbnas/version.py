"""The package version, in a module of its own so that low layers (the store records it
with every run) can read it without importing the package's API (``mbnas/__init__``)."""

__version__ = "0.1.0"
