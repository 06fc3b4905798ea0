"""The spread of a search score, and whether a difference between two scores exceeds it.

A search score is the mean over folds x seeds of the runs' validation scores; its standard
error (sample standard deviation / sqrt(n)) is the spread that a re-run with other seeds
or another thread count moves it by (issue 35: one network moved by 0.053 between thread
counts while the demo reported +0.0189 as a finding). A difference between two scores is
called "within noise" when it is no larger than the standard error of the difference,
sqrt(se_a^2 + se_b^2): a rough one-sigma rule, not a test (the report's Wilcoxon and
Friedman tests are), but it stops noise being read as a finding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["best_vs_start", "difference_text", "score_with_se", "standard_error",
           "thread_notes", "within_noise"]


def standard_error(scores: Sequence[float]) -> float | None:
    """Standard error of the mean of ``scores`` (None for fewer than two)."""
    n = len(scores)
    if n < 2:
        return None
    mean = sum(scores) / n
    var = sum((s - mean) ** 2 for s in scores) / (n - 1)
    return math.sqrt(var / n)


def within_noise(diff: float, se_a: float | None, se_b: float | None) -> bool | None:
    """Whether ``diff`` is no larger than the standard error of the difference (None: no
    standard error known, e.g. one fold x seed)."""
    known = [s for s in (se_a, se_b) if s is not None]
    if not known or math.isnan(diff):
        return None
    return abs(diff) <= math.sqrt(sum(s * s for s in known))  # 0 vs 0: no difference


def difference_text(diff: float, se_a: float | None, se_b: float | None) -> str:
    """``+0.0189, within noise (SE of the difference 0.0301)``, or ``beyond``, or just the
    signed difference when no standard error is known."""
    verdict = within_noise(diff, se_a, se_b)
    if verdict is None:
        return f"{diff:+.4f}, spread unknown (one fold x seed)"
    se = math.sqrt(sum(s * s for s in (se_a, se_b) if s is not None))
    return (f"{diff:+.4f}, {'within' if verdict else 'beyond'} noise (SE of the difference "
            f"{se:.4f})")


def best_vs_start(log: Sequence[dict]) -> str | None:
    """``best 0.8123 ± 0.0100 SE vs the start (evaluation 1) 0.7934 ± 0.0150: +0.0189,
    within noise (...)`` from ``search_log.jsonl`` entries (None: no two scores)."""
    scored = [e for e in log if e.get("score") is not None]
    if not scored:
        return None
    start, best = scored[0], max(scored, key=lambda e: e["score"])

    def score(e: dict) -> str:
        se = e.get("se")
        return f"{e['score']:.4f}" + ("" if se is None else f" ± {se:.4f} SE")

    if best is start:
        return f"best {score(best)} is the start (evaluation {start['index'] + 1})"
    diff = best["score"] - start["score"]
    return (f"best {score(best)} (evaluation {best['index'] + 1}) vs the start "
            f"{score(start)}: {difference_text(diff, best.get('se'), start.get('se'))}")


def thread_notes(runs: Sequence[tuple[str, Sequence[dict]]]) -> list[str]:
    """A note for each search whose evaluations trained with different CPU thread counts
    (scores move between thread counts: issue 35 saw 0.053 on one network)."""
    notes = []
    for label, log in runs:
        used: set[int] = set()
        for e in log:
            t = e.get("threads")
            used.update(t if isinstance(t, list) else [t] if t is not None else [])
        if len(used) > 1:
            notes.append(f"{label}: its runs trained with different CPU thread counts "
                         f"({', '.join(str(t) for t in sorted(used))}); scores of one network "
                         "move between thread counts, so compare its evaluations with care "
                         "(--threads fixes the count)")
    return notes


def score_with_se(log: Sequence[dict], score: float | None) -> str:
    """``0.8123 ± 0.0100 SE`` for a score of the log (its first entry of that score)."""
    if score is None:
        return "n/a"
    se = next((e.get("se") for e in log if e.get("score") == score), None)
    return f"{score:.4f}" + ("" if se is None else f" ± {se:.4f} SE")
