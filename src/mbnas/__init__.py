"""mbnas: Mixed-Block Neural Architecture Search for medical image segmentation."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
