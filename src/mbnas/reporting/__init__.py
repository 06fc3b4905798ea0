"""Reports built from evaluations, store-independent and testable on fixed numbers.

* :mod:`mbnas.reporting.report_data`: the input data (:class:`ModelEvaluation`, :class:`CaseScore`,
  :class:`ModelCost`) with a JSON round-trip.
* :mod:`mbnas.reporting.table`: Table 1 (Markdown, CSV, JSON).
* :mod:`mbnas.reporting.stats`: Friedman test; Wilcoxon signed-rank tests with Holm correction.
* :mod:`mbnas.reporting.figures`: per-case box plots, example segmentations.
* :mod:`mbnas.reporting.progress_figure`: the search progress figure.
* :mod:`mbnas.reporting.card`: the NAS reporting card, genotype similarity, search stability.
* :mod:`mbnas.reporting.html`: the self-contained HTML page.

Only the data model is imported here, so that importing one submodule stays cheap
(the others pull in SciPy or matplotlib).
"""

from mbnas.reporting.report_data import CaseScore, ModelCost, ModelEvaluation, ReportError

__all__ = ["CaseScore", "ModelCost", "ModelEvaluation", "ReportError"]

