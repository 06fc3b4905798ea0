"""The model folders of `mbnas evaluate`: each model's kept weights, exported for `predict`.

Every model gets ``EVAL_DIR/models/<slug>/``; the best network of a search run gets
``RUN_DIR/model`` too. That folder belongs to whichever evaluation exported into it last,
so an export that replaces another evaluation's model folder says so in a note (the
evaluation folder is recorded as ``source`` in ``model.json``).

Each run's weights are kept once in the evaluation folder: once a model folder holds a
copy whose checksum (``model.json``'s ``weights_sha256``) is the store's, the run's file
under ``weights/`` is removed, and :func:`weights_file` finds it in the model folder.
Model folders hold copies, never links, so one edited in place changes nothing else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mbnas.commands.common.runfolder import EvaluationFolder, RunFolder
from mbnas.commands.common.search_runs import slug
from mbnas.io import file_sha256


def weights_file(folder: EvaluationFolder, record: Any) -> Path | None:
    """A run's kept weights: in the evaluation folder (which may have been moved since),
    else where the run saved them, else in one of the evaluation's model folders with the
    store's checksum; None when none exists."""
    here = folder.weights_file(record.arch_key, record.fold, record.seed)
    for path in (here, Path(record.weights_path or here)):
        if path.is_file():
            return path
    for meta in sorted(folder.models.glob("*/model.json")):
        kept = meta.parent / here.name
        if record.weights_sha256 and _checksums(meta).get(here.name) == record.weights_sha256 \
                and kept.is_file():
            return kept
    return None


def _checksums(meta: Path) -> dict[str, str]:
    """``weights_sha256`` of a model folder's ``model.json`` ({} when unreadable)."""
    try:
        sums = json.loads(meta.read_text()).get("weights_sha256")
    except (OSError, ValueError, AttributeError):
        return {}
    return sums if isinstance(sums, dict) else {}


def release_weights(folder: EvaluationFolder, runs: Sequence[Any], weights: Sequence[Path],
                    model_dir: Path) -> None:
    """Remove the evaluation's own file of each run whose weights ``model_dir`` now holds
    with the store's checksum: every weights file is then kept once."""
    if folder.shared != folder.path:  # weights another folder shares: left alone
        return
    sums = _checksums(model_dir / "model.json")
    for run, path in zip(runs, weights, strict=True):
        if path.parent.parent != folder.weights or not run.weights_sha256:
            continue
        if sums.get(path.name) == run.weights_sha256 and (model_dir / path.name).is_file():
            path.unlink()
            with contextlib.suppress(OSError):  # the architecture's folder, once empty
                path.parent.rmdir()


def export_models(folder: EvaluationFolder, models: Sequence[Any], results: Sequence[Any],
                  data: Any, protocol: Any, norm: dict[str, Any], notes: list[str]
                  ) -> dict[str, Path]:
    """Export each model's kept weights as a model folder for `mbnas predict`.

    ``EVAL_DIR/models/<slug>/`` for every model whose finished runs all have their
    weights, and the same for a search run's best network in ``RUN_DIR/model``. A model
    that cannot be exported, and a ``RUN_DIR/model`` of another evaluation that is
    replaced, get a line in ``notes``. Returns model name -> folder.

    Args:
        folder: The evaluation folder.
        models: The ``EvaluatedModel`` of each model.
        results: The ``EvaluationResult`` of each model, in the same order.
        data: The training slices (channels, classes, names).
        protocol: The evaluation protocol (width and slice size).
        norm: The per-channel normalisation of training.
        notes: Lines for the user, appended to.
    """
    from mbnas.inference.model_folder import export_model

    source = str(folder.path.resolve())
    folders: dict[str, Path] = {}
    for m, res in zip(models, results, strict=True):
        finished = [r for r in res.runs if r.status == "finished"]
        weights = [weights_file(folder, r) for r in finished]
        changed = [f"{w}" for r, w in zip(finished, weights, strict=True) if w is not None
                   and r.weights_sha256 is not None and file_sha256(w) != r.weights_sha256]
        if changed:
            notes.append(f"{m.name}: no model folder exported, weights changed since they "
                         f"were trained (checksum differs from the store): {', '.join(changed)}")
            continue
        missing = [f"fold {r.fold} seed {r.seed}"
                   for r, w in zip(finished, weights, strict=True) if w is None]
        if missing:
            notes.append(f"{m.name}: no model folder exported, the weights of "
                         f"{', '.join(missing)} are missing from {folder.weights}")
        if missing or not weights:
            continue
        settings = dict(
            architecture=m.architecture, in_channels=data.in_channels,
            n_classes=data.n_classes, base_channels=protocol.base_channels,
            image_size=protocol.image_size, label_names=data.label_names,
            channel_names=data.channel_names, normalisation=norm, weights=weights,
            source=source, target_spacing=protocol.target_spacing,
            volume=None if protocol.volume is None else protocol.volume.to_dict())
        if m.search_run is not None:
            settings["search"] = search_state(m.search_run)
        folders[m.name] = folder.model_dir(slug(m.name))
        export_model(folders[m.name], **settings)  # weights copied: never linked
        if m.search_run is not None and not m.front_member:
            target = RunFolder(m.search_run.folder).model
            note = replacement_note(target, m.arch_key, source)
            try:
                export_model(target, **settings)
            except OSError as exc:  # a search folder on a read-only file system or medium
                note = (f"{target} not written ({exc.strerror or exc}); the model folder "
                        f"is {folders[m.name]}")
            if note is not None:
                notes.append(note)
        release_weights(folder, finished, [w for w in weights if w is not None],
                        folders[m.name])
    return folders


def search_state(run: Any) -> dict[str, Any]:
    """Which state of a search a network was taken from: its run folder, the evaluations
    it had logged, its budget, and the best network's key and search score then. A search
    extended later has more evaluations and perhaps another best (``mbnas report`` says
    so); this record tells which state a model folder (or its ONNX copy) holds."""
    return {"run_dir": str(run.folder), "evaluations": len(run.files.read_search_log()),
            "budget": run.config.get("budget"), "arch_key": run.best.get("arch_key"),
            "search_score": run.best.get("score")}


def replacement_note(target: Path, arch_key: str, source: str) -> str | None:
    """The note for exporting into ``target`` when another evaluation exported there.

    None when ``target`` holds no model folder, or one of this evaluation (``source``),
    or, exported before sources were recorded, one of the same network.
    """
    from mbnas.inference.model_folder import MODEL_JSON
    from mbnas.spaces.mbnas import architecture_from_dict

    try:
        meta = json.loads((target / MODEL_JSON).read_text())
        old_source = meta.get("source")
    except (OSError, ValueError, AttributeError):
        return None
    try:
        old_key = architecture_from_dict(meta["architecture"]).key
    except (KeyError, TypeError, ValueError):
        old_key = None
    if old_source == source or (old_source is None and old_key == arch_key):
        return None
    network = "the same network" if old_key == arch_key else "another network"
    where = (f"the evaluation {old_source}" if old_source is not None
             else "an earlier evaluation")
    return (f"{target}: replaced the model folder of {network} exported by {where}; its "
            "own copy stays in that evaluation's models/ folder")
