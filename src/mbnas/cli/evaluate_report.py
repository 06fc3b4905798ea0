"""`mbnas evaluate` and `mbnas report`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from mbnas.cli.settings import (
    add_executor_arguments,
    add_protocol_arguments,
    ray_settings,
    real_data_flags,
)
from mbnas.cli.sites import add_site_arguments, intensity_settings, resolve_split
from mbnas.cli.speed import (
    add_speed_arguments,
    after_runs_seconds,
    evaluate_estimate,
    guard_evaluate,
    print_estimate,
)
from mbnas.errors import EXIT_DONE, EXIT_RUNS_FAILED, ConfigError
from mbnas.progress import format_seconds, stamp
from mbnas.training.executors import DEFAULT_EXECUTOR

# Protocol flags that override one training setting of the searches' protocol.
_OVERRIDES = ("epochs", "batch_size", "image_size", "lr")


class RunProgress:
    """Run hooks drawing one bar over the runs of an evaluation, with the time left.

    The bar counts every planned run; runs the store already holds (a resumed
    evaluation) count as done from the start, so it ends at its total. The time left
    is the mean time of the runs trained now times the runs still to train, plus
    ``after``: the seconds of the steps that follow the runs (metrics on the original
    grid), so that it is the time left of the whole evaluation.
    """

    def __init__(self, total: int, after: float = 0.0) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from mbnas.cli.steps import console

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), console=console())
        self.task = self.progress.add_task("runs", total=total, info="")
        self.total = total
        self.after = after
        self.done = 0  # finished, failed or answered by the store
        self.stored = 0  # answered by the store
        self.started = 0  # started now
        self.trained_seconds: list[float] = []
        self.plain = not sys.stdout.isatty()  # sbatch/nohup: plain lines, no live bar
        self._live = False
        self._last_line = -math.inf

    def __enter__(self) -> RunProgress:
        return self  # the bar appears with the first run: a refusal stays one line

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self.progress.stop()

    def _line(self, text: str, every: float = 0.0) -> None:
        now = time.monotonic()
        if now - self._last_line >= every:
            self._last_line = now
            stamp(text)

    @property
    def _number(self) -> int:
        """The number of the run being trained: stored runs come first."""
        return min(self.stored + self.started, self.total)

    def _left(self) -> str:
        if not self.trained_seconds:
            return ""
        per_run = sum(self.trained_seconds) / len(self.trained_seconds)
        left = per_run * max(self.total - self.done, 0) + self.after
        return f", ~{format_seconds(left)} left" + (" (runs, then metrics)" if self.after
                                                    else "")

    def runs_queued(self, to_train: int, stored: int) -> None:
        self.stored += stored
        self.done = min(self.done + stored, self.total)
        self.progress.update(self.task, completed=self.done)
        if stored:
            (self._line if self.plain else self.progress.console.print)(
                f"{stored} of {self.total} runs are in the store; {to_train} to train")

    def run_started(self, spec) -> None:
        if not self._live and not self.plain:
            self._live = True
            self.progress.start()
        self.started += 1
        if self.plain:
            self._line(f"run {self._number}/{self.total}: {spec.label}{self._left()}")
        self.progress.update(self.task, info=f"run {self._number}: {spec.label}{self._left()}")

    def epoch_done(self, spec, stats) -> None:
        text = (f"run {self._number}/{self.total}: {spec.label} epoch {stats.epoch + 1}/"
                f"{spec.protocol.epochs} val Dice {stats.val_dice:.3f}{self._left()}")
        if self.plain:
            self._line(text, every=60.0)
        self.progress.update(self.task, info=text)

    def run_done(self, record) -> None:
        self.done = min(self.done + 1, self.total)
        if record.status == "finished":
            self.trained_seconds.append(record.seconds)
        self.progress.update(self.task, completed=self.done)


def _baselines(text: str) -> tuple[str, ...]:
    from mbnas.spaces.mbnas import OLD_BASELINE_NAMES

    if text.strip().lower() in ("", "none"):
        return ()
    names = tuple(b.strip() for b in text.split(",") if b.strip())
    for old in (b for b in names if b in OLD_BASELINE_NAMES):
        print(f"note: baseline {old!r} is now called {OLD_BASELINE_NAMES[old]!r} (the "
              "name 'unet' is the U-Net preset genotype)", file=sys.stderr)
    return names


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def evaluate_settings(args: argparse.Namespace):
    """The :class:`EvaluateConfig` of the command line."""
    from mbnas.commands.common.search_runs import read_search_runs
    from mbnas.commands.evaluate.external import parse_externals
    from mbnas.commands.evaluate.run import evaluate_config
    from mbnas.training.protocol import Protocol, dataset_name, get_protocol

    runs = read_search_runs(args.run_dirs)
    base = (get_protocol(args.protocol, dataset_name(runs[0].data_dir)) if args.protocol
            else runs[0].protocol)
    flags = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    if args.intensity is not None:
        flags["intensity"] = intensity_settings(args.intensity)
    if args.normalisation is not None:
        flags["normalisation"] = [n.strip() for n in args.normalisation.split(",")]
    flags.update(real_data_flags(args, runs[0].data_dir))
    protocol = Protocol.from_dict({**base.to_dict(), **flags})
    settings = {"device": args.device, "split_seed": args.split_seed,
                "executor": args.executor or DEFAULT_EXECUTOR,
                "ray": ray_settings(args, {}), "front": args.front,
                "external": tuple(f"{e.data_dir}:{e.name}"
                                  for e in parse_externals(args.external or ())),
                "sites_file": runs[0].config.get("sites_file")}
    resolve_split(args, runs[0].data_dir, settings)
    if args.cache_dir is not None:
        settings["cache_dir"] = str(Path(args.cache_dir).resolve())
    return evaluate_config(
        args.run_dirs, seeds=args.seeds if args.seeds is not None else 5,
        folds=args.folds if args.folds is not None else 5,
        baselines=_baselines(args.baselines), protocol=protocol, **settings)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mbnas.api import evaluate
    from mbnas.training.executors import make_executor

    config = evaluate_settings(args)
    if args.estimate:
        return print_estimate(evaluate_estimate(config, args.threads), "evaluation")
    runs_per_device = args.runs_per_device or 1
    guard_evaluate(config, args.threads, runs_per_device)
    executor = make_executor(config.executor, config.ray, args.threads, runs_per_device,
                             bool(args.fuse))
    executor.start()
    from mbnas.commands.evaluate.run import planned_runs

    total = planned_runs(config)
    try:
        with RunProgress(total, after_runs_seconds(config)) as progress:
            outcome = evaluate(config.run_dirs, args.out, config=config, hooks=progress,
                               executor=executor, retry_failed=args.retry_failed)
    finally:
        executor.close()
    print(f"{'resumed' if outcome.resumed else 'finished'} evaluation in {outcome.folder}: "
          f"{outcome.n_runs} runs ({outcome.n_trained} trained now, "
          f"{outcome.n_runs - outcome.n_trained} from the store)")
    from mbnas.metrics.registry import metric_definitions

    metrics = [(d, d.column_header(tolerance_mm=config.protocol.surface_tolerance_mm))
               for d in metric_definitions()]
    widths = [max(len(head), d.decimals + 4) for d, head in metrics]
    print(f"{'model':<24} " + " ".join(f"{head:>{w}}" for (_, head), w in zip(metrics, widths))
          + f" {'params M':>9}  model folder")
    for e in outcome.evaluations:
        values = [_mean([c.value(d.name) for c in e.cases if d.name in c.values])
                  for d, _ in metrics]
        folder = outcome.model_dirs.get(e.name, "none (no finished run)")
        print(f"{e.name:<24} " + " ".join(
            f"{v:{w}.{d.decimals}f}" for v, (d, _), w in zip(values, metrics, widths))
            + f" {(e.cost.params or 0) / 1e6:9.3f}  {folder}")
    for note in outcome.notes:
        print(f"note: {note}")
    from mbnas.commands.common.runfolder import EvaluationFolder

    print(f"results: {EvaluationFolder(outcome.folder).evaluation}; report: mbnas report "
          f"--evaluation {outcome.folder} --out report")
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) failed (tracebacks in the store): "
              + ", ".join(outcome.failed))
        return EXIT_RUNS_FAILED
    return EXIT_DONE


def evaluates(folder, run_dirs: list[str]) -> bool:
    """Whether an evaluation folder holds an evaluation of (all of) these search runs."""
    if not folder.evaluation.is_file():
        return False
    try:
        evaluated = {str(Path(d).resolve()) for d in folder.read_config().get("run_dirs", ())}
    except ConfigError:  # an unreadable folder is just not suggested
        return False
    return {str(Path(d).resolve()) for d in run_dirs} <= evaluated


def cmd_report(args: argparse.Namespace) -> int:
    from mbnas.api import report
    from mbnas.commands.common.runfolder import EvaluationFolder
    from mbnas.commands.evaluate.run import default_evaluation_dir

    if not args.run_dirs and args.evaluation is None:
        raise ConfigError("give search run folders (RUN_DIR ...), --evaluation EVAL_DIR, "
                          "or both")
    from mbnas.commands.common.preflight import check_output_dir

    check_output_dir(args.out)
    outcome = report(args.run_dirs, args.out, evaluation=args.evaluation,
                     cache_dir=args.cache_dir, nnunet=args.nnunet)
    print(f"report: {outcome.html}")
    print("files: " + ", ".join(p.name for p in outcome.files))
    for note in outcome.notes:
        print(f"note: {note}")
    if args.evaluation is None:
        hint = default_evaluation_dir(args.run_dirs)
        extra = (f" ({hint} evaluates these runs: add --evaluation {hint})"
                 if evaluates(EvaluationFolder(hint), args.run_dirs) else "")
        print(f"search-only report: no --evaluation given{extra}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="retrain the best searched networks and the baselines with the "
        "final protocol (seeds x folds) and measure them (Table 1)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="search run folders (each with best.json), all of one dataset")
    p.add_argument("--out", help="evaluation folder, created or resumed "
                   "(default: <parent of the first RUN_DIR>/evaluation)")
    p.add_argument("--baselines", default="smp-unet,smp-resunet",
                   help="comma-separated baselines to evaluate too: smp-unet, smp-resunet "
                        "(segmentation_models_pytorch's U-Nets); or 'none'")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the evaluation's folds")
    p.add_argument("--front", action="store_true", help="retrain every archive member of a "
                   "cost-aware search (its front.json), not only the best network")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache", dest="cache_dir", help="preprocessing cache folder "
                   "(default: the first search run's)")
    p.add_argument("--retry-failed", action="store_true",
                   help="train failed runs again (runs that failed because of the machine "
                        "are always retried)")
    p.add_argument("--external", action="append", metavar="DATA_DIR[:NAME]",
                   help="an external test set (repeatable): each model, as the ensemble of "
                        "its trained runs, segments every case; never used for training")
    add_executor_arguments(p)
    add_protocol_arguments(p)
    add_site_arguments(p)
    add_speed_arguments(p)
    helps = {"protocol": "start from this preset instead of the first search run's protocol",
             "seeds": "initialisations per fold of the final protocol (default 5, the paper's)",
             "folds": "folds of the final protocol (default 5, the paper's)"}
    for action in p._actions:  # the defaults differ from those of `mbnas search`
        action.help = helps.get(action.dest, action.help)
    p.set_defaults(handler=cmd_evaluate)
    p.epilog = ("Training settings are those of the first search run's protocol; --protocol "
                "starts from a preset instead, and the other protocol flags override single "
                "settings. --seeds (default 5) and --folds (default 5) set the final protocol.")

    r = sub.add_parser("report", help="one self-contained HTML page (+ Markdown, CSV, JSON) "
                       "from search runs and their evaluation")
    r.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                   help="search run folders (default: those of the evaluation)")
    r.add_argument("--evaluation", metavar="EVAL_DIR",
                   help="folder of `mbnas evaluate` (without it: a search-only report)")
    r.add_argument("--out", default="report", help="report folder (default: report)")
    r.add_argument("--nnunet", action="append", default=[], metavar="RESULTS_DIR[:LABEL]",
                   help="nnU-Net results folder of the dataset ($nnUNet_results/DatasetXXX_"
                        "Name): adds its 2d and 2d_mbnas validation results as rows marked "
                        "'trained by nnU-Net', with per-case Wilcoxon tests (repeatable)")
    r.add_argument("--cache", dest="cache_dir",
                   help="preprocessing cache folder (for the example segmentations)")
    r.set_defaults(handler=cmd_report)
