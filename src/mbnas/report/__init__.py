"""Reports built from evaluations, store-independent and testable on fixed numbers.

* :mod:`mbnas.report.model`: the input data (:class:`ModelEvaluation`, :class:`CaseScore`,
  :class:`ModelCost`) with a JSON round-trip.
* :mod:`mbnas.report.table`: Table 1 (Markdown, CSV, JSON).
* :mod:`mbnas.report.stats`: Friedman test; Wilcoxon signed-rank tests with Holm correction.
* :mod:`mbnas.report.figures`: per-case box plots, example segmentations.
* :mod:`mbnas.report.progress`: the search progress figure.
* :mod:`mbnas.report.card`: the NAS reporting card, genotype similarity, search stability.
* :mod:`mbnas.report.html`: the self-contained HTML page.

Only the data model is imported here, so that importing one submodule stays cheap
(the others pull in SciPy or matplotlib).
"""

from mbnas.report.model import CaseScore, ModelCost, ModelEvaluation, ReportError

__all__ = ["CaseScore", "ModelCost", "ModelEvaluation", "ReportError"]

# `mbnas.report(...)` is the API function of mbnas.api (see mbnas._callable).
from mbnas._callable import make_callable  # noqa: E402

make_callable(__name__, "report")
