"""Errors a user can meet. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class MbnasError(Exception):
    """Base class for errors caused by the user's input or settings, not by a bug.

    The message must say what is wrong (naming the file where there is one) and
    what to do about it.
    """


class DatasetError(MbnasError):
    """A dataset folder or file that cannot be used."""


class GenotypeError(MbnasError, ValueError):
    """A genotype that is not a valid network of its search space."""


class ConfigError(MbnasError):
    """Settings that are invalid or conflict with an existing run folder."""
