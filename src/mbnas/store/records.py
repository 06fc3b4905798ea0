"""What the store keeps of one training run: an immutable, JSON-safe record."""

from __future__ import annotations

import json
import math
import operator
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from mbnas.errors import MbnasError

__all__ = [
    "FAILURE_KINDS",
    "RUN_STATUSES",
    "FinishedRunError",
    "RunKey",
    "RunRecord",
    "StoreError",
    "runtime_versions",
    "utc_now",
]

RUN_STATUSES = ("finished", "failed")
#: Why a run failed: its environment (no device, out of memory, disk full, worker lost),
#: retried on resume; or its network (non-finite loss, an error in the model), final.
FAILURE_KINDS = ("environment", "network")

RunKey = tuple[str, str, int, int]
"""(arch_key, protocol_key, fold, seed): what identifies one training run."""

# Fields stored as JSON text; everything else is a plain SQLite column.
JSON_FIELDS = ("curve", "metrics", "versions", "architecture", "protocol")


class StoreError(MbnasError):
    """A result store that cannot be opened, read or written as asked."""


class FinishedRunError(StoreError):
    """A run that is already finished in the store was stored again."""


def utc_now() -> str:
    """The current time as an ISO 8601 string in UTC, as stored in ``started_at``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def runtime_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on, for ``RunRecord.versions``.

    Read from package metadata, so nothing heavy is imported; the CUDA version is added
    when torch is already loaded.
    """
    out = {"python": platform.python_version()}
    for package in ("mbnas", "torch", "numpy", "monai", "segmentation-models-pytorch"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    torch = sys.modules.get("torch")
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    if cuda:
        out["cuda"] = str(cuda)
    return out


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays (metrics, curves) become plain numbers and lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """Canonical JSON text (sorted keys) of a record field."""
    return json.dumps(value, sort_keys=True, default=_json_default)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One training run: an architecture trained under a protocol on one fold with one seed.

    Records are values: the JSON fields are normalised (copied through JSON) when the
    record is made, so a record read back from the store equals the one put in, and
    changing the dicts passed in afterwards does not change the record. Treat the lists
    and dicts it holds as read-only.

    Attributes:
        arch_key: Stable hash of the architecture (genotype).
        protocol_key: Stable hash of the training protocol.
        fold: Cross-validation fold, >= 0.
        seed: Network-initialisation seed, >= 0.
        status: ``"finished"`` or ``"failed"``.
        score: The run's score (validation Dice averaged over the last epochs); required
            and finite for a finished run (SQLite would store NaN as NULL).
        curve: Per-epoch values (floats or dicts), in epoch order.
        metrics: Further metrics, e.g. per-case Dice/HD95/Surface Dice.
        seconds: Wall-clock training time.
        device: Where it ran, e.g. ``"cuda:0 (NVIDIA H100)"`` or ``"cpu"``.
        versions: Package versions, see :func:`runtime_versions`.
        architecture: The architecture as a dict (the genotype's JSON form).
        protocol: The protocol as a dict.
        started_at: ISO 8601 time in UTC, see :func:`utc_now`.
        finished_at: ISO 8601 time in UTC.
        error: The traceback of a failed run; required when ``status == "failed"``.
        weights_path: Where the trained weights were saved, if they were; relative
            paths are relative to the store's folder.
        failure: For a failed run, one of :data:`FAILURE_KINDS` (None: unknown, as in
            stores written before it was recorded; treated as a network failure).
        weights_sha256: SHA-256 of the saved weights file, checked when it is loaded.
        data_fingerprint: Fingerprint of the dataset and preprocessing the run trained on.
    """

    arch_key: str
    protocol_key: str
    fold: int
    seed: int
    status: str
    score: float | None = None
    curve: list[Any] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float
    device: str
    versions: dict[str, Any]
    architecture: dict[str, Any]
    protocol: dict[str, Any]
    started_at: str
    finished_at: str
    error: str | None = None
    weights_path: str | None = None
    failure: str | None = None
    weights_sha256: str | None = None
    data_fingerprint: str | None = None

    def __post_init__(self) -> None:
        where = f"run {self.arch_key!r}/{self.protocol_key!r}"
        for name in ("arch_key", "protocol_key", "device"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise StoreError(f"{where}: {name} must be a non-empty string, got {value!r}")
        for name in ("fold", "seed"):
            self._set(name, _non_negative_int(getattr(self, name), name, where))
        if self.status not in RUN_STATUSES:
            raise StoreError(f"{where}: status must be one of {RUN_STATUSES}, got {self.status!r}")
        if self.score is not None:
            self._set("score", _finite(self.score, "score", where))
        elif self.status == "finished":
            raise StoreError(f"{where}: a finished run needs a finite score")
        if self.status == "failed" and not (isinstance(self.error, str) and self.error):
            raise StoreError(f"{where}: a failed run needs its error text (the traceback)")
        seconds = _finite(self.seconds, "seconds", where)
        if seconds < 0:
            raise StoreError(f"{where}: seconds must be >= 0, got {seconds}")
        self._set("seconds", seconds)
        for name in ("started_at", "finished_at"):
            _check_utc(getattr(self, name), name, where)
        if self.failure is not None and (self.status != "failed"
                                         or self.failure not in FAILURE_KINDS):
            raise StoreError(f"{where}: failure must be one of {FAILURE_KINDS} on a failed "
                             f"run, got {self.failure!r}")
        for name in ("error", "weights_path", "weights_sha256", "data_fingerprint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise StoreError(f"{where}: {name} must be a string or None, got {value!r}")
        for name in JSON_FIELDS:
            value = getattr(self, name)
            expected = list if name == "curve" else dict
            if name == "curve" and isinstance(value, tuple):
                value = list(value)
            elif name != "curve" and isinstance(value, Mapping):
                value = dict(value)
            if not isinstance(value, expected):
                raise StoreError(
                    f"{where}: {name} must be a {expected.__name__}, got {type(value).__name__}"
                )
            try:
                self._set(name, json.loads(to_json(value)))
            except (TypeError, ValueError) as exc:
                raise StoreError(f"{where}: {name} is not JSON serialisable ({exc})") from exc

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @property
    def key(self) -> RunKey:
        """(arch_key, protocol_key, fold, seed)."""
        return (self.arch_key, self.protocol_key, self.fold, self.seed)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-safe dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _non_negative_int(value: Any, name: str, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise StoreError(f"{where}: {name} must be an integer, got {value!r}") from None
    if number < 0:
        raise StoreError(f"{where}: {name} must be >= 0, got {number}")
    return number


def _finite(value: Any, name: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise StoreError(f"{where}: {name} must be finite, got {number}")
    return number


def _check_utc(value: Any, name: str, where: str) -> None:
    try:
        stamp = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise StoreError(
            f"{where}: {name} must be an ISO 8601 time such as utc_now() gives, got {value!r}"
        ) from None
    offset = stamp.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise StoreError(f"{where}: {name} must be in UTC (+00:00), got {value!r}")
