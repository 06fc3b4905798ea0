"""The figures of one report that need more than its tables: the best architectures,
drawn, and example segmentations of the evaluated models on one validation case."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mbnas.commands.common.evaluation_file import EvaluationFile
from mbnas.commands.common.search_runs import SearchRun
from mbnas.errors import ConfigError, MbnasError
from mbnas.reporting.report_data import ModelEvaluation


def draw_best(run: SearchRun, prefix: Path) -> list[Path]:
    """The architecture picture of a run's best network (PNG and SVG), drawn by its
    language's codec; for a language that draws nothing, its variables as a table."""
    from mbnas.spaces.languages import codec_of, describe

    codec = codec_of(run.genotype)
    if codec is None:
        return []
    architecture = codec.decode(run.genotype)
    title = f"{run.name}: best network ({architecture.key})"
    if codec.draw is not None:
        return list(codec.draw(architecture, prefix, title))
    from mbnas.reporting.figures import plt, save_figure

    rows = list((describe(run.genotype) or {}).items())
    columns = list(dict.fromkeys(v for _, node in rows for v in node))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(columns), 0.9 + 0.3 * len(rows)))
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    ax.table(cellText=[[node.get(v, "") for v in columns] for _, node in rows],
             rowLabels=[g for g, _ in rows], colLabels=columns, loc="center")
    return save_figure(fig, prefix)


def example_segmentations(evaluation: EvaluationFile, evals: Sequence[ModelEvaluation],
                          eval_dir: Path, out_prefix: Path,
                          cache_dir: str | Path | None = None) -> tuple[list[Path], str]:
    """Predict one validation slice with each model's fold-0, seed-0 network and draw it.

    The networks are read from the models' exported folders, as `mbnas predict` reads
    them (checksums checked). The slice: of the first validation case of fold 0, the
    one with the most foreground.
    """
    from mbnas.commands.common.dataset import training_data
    from mbnas.inference.model_folder import load_model_folder
    from mbnas.inference.segment import Segmenter
    from mbnas.metrics import label_dice
    from mbnas.reporting.figures import plot_example_segmentations
    from mbnas.training.runs import weights_name

    protocol = evaluation.protocol
    if protocol.volume is not None:
        raise MbnasError("the figure shows 2D slices; this evaluation's networks are 3D")
    data = training_data(evaluation.data_dir, cache_dir or evaluation.cache_dir,
                         protocol.image_size, evaluation.sites_file, protocol.normalisation,
                         protocol.target_spacing, allow_cropped_labels=True)
    case_id = evaluation.folds[0][0]
    rows = data.case_slices(case_id)
    labels = data.labels[rows]
    k = rows.start + int(np.argmax((labels > 0).reshape(len(labels), -1).sum(1)))
    image, ref = data.images[k], data.labels[k]
    first = weights_name(0, 0)
    preds, captions = {}, {}
    for e in evals:
        details = evaluation.details.get(e.name)
        if details is None or not (eval_dir / details.model_dir / first).is_file():
            continue
        model = load_model_folder(eval_dir / details.model_dir).member(first)
        pred = Segmenter(model, "cpu").predict_slices(image[None])[0]
        preds[e.name] = pred
        # a prediction covering the whole slice has no contour: say how much it covers
        slice_dice = float(label_dice(pred, ref, data.n_classes).mean())
        captions[e.name] = (f"slice Dice {slice_dice:.3f}, "
                            f"{100 * float((pred > 0).mean()):.0f}% predicted foreground")
    if not preds:
        raise ConfigError("no model has weights of fold 0, seed 0")
    title = (f"{case_id}, slice {int(data.slice_index[k])} (fold 0 validation case), "
             "networks of fold 0, seed 0")
    # The title goes into the page's caption: a figure title overlaps the two-line panel
    # titles of plot_example_segmentations.
    paths = plot_example_segmentations(
        radiological(image[0]), radiological(ref),
        {n: radiological(p) for n, p in preds.items()}, out_prefix, captions=captions,
        class_names={c: n for c, n in data.label_names.items() if c != 0})
    return paths, ("Example segmentations: reference (green) and prediction (pink) "
                   f"contours on {title}; radiological view (anterior up, the patient's "
                   "right on the left).")


def radiological(slice_ra: np.ndarray) -> np.ndarray:
    """An axial slice (rows along R, columns along A, see ``mbnas.data.preprocess``) as
    shown in radiology: anterior at the top, the patient's right on the viewer's left."""
    return np.asarray(slice_ra).T[::-1, ::-1]
