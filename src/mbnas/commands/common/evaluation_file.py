"""``EVAL_DIR/evaluation.json``: the results of `mbnas evaluate`, as one typed object.

`mbnas evaluate` writes it (:func:`write_evaluation`) and `mbnas report` reads it
(:func:`read_evaluation`); nothing else reads the file. A file that is not one gives a
one-line :class:`~mbnas.errors.ConfigError` naming the file and the key at fault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.errors import ConfigError, MbnasError
from mbnas.io import atomic_write_json
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.training.protocol import Protocol

EVALUATION_FORMAT = "mbnas-evaluation"
EVALUATION_VERSION = 1


class _Invalid(ValueError):
    """A key of the file that is missing or of the wrong type (its path in the file)."""


_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
               float: "a number"}


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "",
         optional: bool = False) -> Any:
    name = f"{where}{key}"
    if key not in d:
        raise _Invalid(f"missing key '{name}'")
    value = d[key]
    if value is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise _Invalid(f"key '{name}' must be {wanted}, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class ModelDetails:
    """What the evaluation records of one model besides its scores.

    Attributes:
        arch_key: The network's key.
        model_dir: Its model folder, relative to the evaluation folder.
        runs: Runs trained for it (folds x seeds).
        failed_runs: ``"fold F seed S"`` of each run that did not finish.
        run_score_mean: Mean run score (None when no run finished).
        seconds_by_device: Training seconds per device.
        search: For a searched network, its search run (``run_dir``, ``space``,
            ``strategy``, ``seed``, ``search_score``); None for a baseline.
        versions: Software versions recorded by its first run.
        constant_runs: ``"fold F seed S"`` of each run whose last validation prediction
            was one class on every pixel (see :mod:`mbnas.reporting.suspect`).
    """

    arch_key: str
    model_dir: str
    runs: int
    failed_runs: tuple[str, ...] = ()
    run_score_mean: float | None = None
    seconds_by_device: dict[str, float] = field(default_factory=dict)
    search: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    constant_runs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"arch_key": self.arch_key, "model_dir": self.model_dir, "runs": self.runs,
                "failed_runs": list(self.failed_runs), "run_score_mean": self.run_score_mean,
                "seconds_by_device": dict(self.seconds_by_device), "search": self.search,
                "versions": dict(self.versions), "constant_runs": list(self.constant_runs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> ModelDetails:
        return cls(
            arch_key=_get(d, "arch_key", str, where),
            model_dir=_get(d, "model_dir", str, where),
            runs=_get(d, "runs", int, where),
            failed_runs=tuple(str(r) for r in _get(d, "failed_runs", list, where)),
            run_score_mean=_get(d, "run_score_mean", (int, float), where, optional=True),
            seconds_by_device={str(k): float(v) for k, v in
                               _get(d, "seconds_by_device", dict, where).items()},
            search=_get(d, "search", dict, where, optional=True),
            versions=dict(_get(d, "versions", dict, where)),
            constant_runs=tuple(str(r) for r in d.get("constant_runs") or ()))


@dataclass(frozen=True)
class EvaluationFile:
    """The contents of ``evaluation.json``.

    Attributes:
        config: The resolved ``EvaluateConfig`` as a dict.
        protocol_key: Key of the evaluation protocol.
        label_names: Class id -> name.
        channel_names: The dataset's input channels.
        sites: Case id -> site (None where the dataset records none).
        folds: Validation case ids per fold.
        models: One :class:`ModelEvaluation` per model.
        details: Model name -> :class:`ModelDetails`.
    """

    config: dict[str, Any]
    protocol_key: str
    label_names: dict[int, str]
    channel_names: tuple[str, ...]
    sites: dict[str, str | None]
    folds: tuple[tuple[str, ...], ...]
    models: tuple[ModelEvaluation, ...]
    details: dict[str, ModelDetails]

    @property
    def protocol(self) -> Protocol:
        return Protocol.from_dict(self.config["protocol"])

    @property
    def data_dir(self) -> str:
        return str(self.config["data_dir"])

    @property
    def run_dirs(self) -> list[str]:
        return [str(d) for d in self.config["run_dirs"]]

    @property
    def cache_dir(self) -> str | None:
        return self.config.get("cache_dir")

    @property
    def sites_file(self) -> str | None:
        return self.config.get("sites_file")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": EVALUATION_FORMAT, "version": EVALUATION_VERSION,
            "config": self.config, "protocol_key": self.protocol_key,
            "label_names": {str(k): v for k, v in self.label_names.items()},
            "channel_names": list(self.channel_names),
            "sites": dict(self.sites),
            "folds": [list(f) for f in self.folds],
            "models": [e.to_dict() for e in self.models],
            "details": {n: d.to_dict() for n, d in self.details.items()},
        }

    @classmethod
    def from_dict(cls, d: Any) -> EvaluationFile:
        """The object of a parsed file.

        Raises:
            ValueError: naming the key that is missing or of the wrong type.
        """
        if not isinstance(d, dict):
            raise _Invalid(f"not a JSON object but {type(d).__name__}")
        if d.get("format") != EVALUATION_FORMAT:
            raise _Invalid(f"format is {d.get('format')!r}, not {EVALUATION_FORMAT!r}")
        config = _get(d, "config", dict)
        _get(config, "protocol", dict, "config.")
        _get(config, "data_dir", str, "config.")
        _get(config, "run_dirs", list, "config.")
        models = []
        for i, m in enumerate(_get(d, "models", list)):
            if not isinstance(m, dict):
                raise _Invalid(f"key 'models[{i}]' must be a mapping, not {type(m).__name__}")
            for key in ("name", "kind"):
                _get(m, key, str, f"models[{i}].")
            try:
                models.append(ModelEvaluation.from_dict(m))
            except KeyError as exc:
                raise _Invalid(f"missing key 'models[{i}].{exc.args[0]}'") from None
            except (MbnasError, TypeError, ValueError, AttributeError) as exc:
                raise _Invalid(f"key 'models[{i}]' is not a model evaluation ({exc})") from None
        _check_models(models)
        details = {}
        for name, v in _get(d, "details", dict).items():
            where = f"details.{name}."
            if not isinstance(v, dict):
                raise _Invalid(f"key 'details.{name}' must be a mapping, not "
                               f"{type(v).__name__}")
            details[str(name)] = ModelDetails.from_dict(v, where)
        folds = _get(d, "folds", list)
        if not all(isinstance(f, list) for f in folds):
            raise _Invalid("key 'folds' must be a list of lists of case ids")
        try:
            label_names = {int(k): str(v) for k, v in _get(d, "label_names", dict).items()}
        except ValueError:
            raise _Invalid("key 'label_names' must map class ids to names") from None
        return cls(
            config=config, protocol_key=_get(d, "protocol_key", str),
            label_names=label_names,
            channel_names=tuple(str(c) for c in _get(d, "channel_names", list)),
            sites={str(k): (None if v is None else str(v))
                   for k, v in _get(d, "sites", dict).items()},
            folds=tuple(tuple(str(c) for c in f) for f in folds),
            models=tuple(models), details=details)


def write_evaluation(path: Path, evaluation: EvaluationFile) -> Path:
    """Write ``evaluation.json`` (atomically)."""
    atomic_write_json(path, evaluation.to_dict())
    return path


def _check_models(models: Sequence[ModelEvaluation]) -> None:
    """At least one model, each named once, each with a network that can be built."""
    from mbnas.spaces.mbnas.baselines import architecture_from_dict

    if not models:
        raise _Invalid("key 'models' holds no model")
    names = [m.name for m in models]
    for i, m in enumerate(models):
        if names.index(m.name) != i:
            raise _Invalid(f"key 'models[{i}]' names model {m.name!r} again "
                           f"(models[{names.index(m.name)}])")
        if not m.architecture:
            continue  # written before evaluations recorded the architecture
        try:
            architecture_from_dict(dict(m.architecture))
        except (MbnasError, TypeError, ValueError, AttributeError, KeyError) as exc:
            raise _Invalid(f"key 'models[{i}].architecture' is not a network ({exc})") from None


def read_evaluation(folder: str | Path) -> tuple[EvaluationFile, list[ModelEvaluation]]:
    """Read ``evaluation.json`` of an evaluation folder: (the file, its models).

    Raises:
        ConfigError: when the folder holds no readable evaluation; the message names the
            file and the key that is missing or of the wrong type.
    """
    path = EvaluationFolder(folder).evaluation
    if not path.is_file():
        raise ConfigError(f"{folder}: no {path.name}; run `mbnas evaluate` first")
    try:
        evaluation = EvaluationFile.from_dict(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable evaluation ({exc}); run `mbnas "
                          "evaluate` again to rewrite it") from None
    return evaluation, list(evaluation.models)
