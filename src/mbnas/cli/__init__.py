"""The `mbnas` command line: parse arguments, build a config, call the API. Nothing else.

Each command group lives in its own module with a `register(subparsers)` function that
adds its sub-commands; every command handler takes the parsed namespace and returns an
exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from mbnas.errors import EXIT_DONE, EXIT_INTERRUPTED, EXIT_REFUSED, MbnasError

# Command-group modules, each exposing register(subparsers).
_GROUPS = ("data", "importers", "space", "train", "search", "evaluate_report", "predict", "export")


def build_parser() -> argparse.ArgumentParser:
    from mbnas.cli.helpgroups import HelpParser, group_help

    parser = HelpParser(
        prog="mbnas",
        description="Mixed-Block Neural Architecture Search for medical image segmentation.",
    )
    from mbnas.version import __version__

    parser.add_argument("--version", action="version", version=f"mbnas {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"mbnas.cli.{name}")
        except ModuleNotFoundError as exc:  # a group not written yet
            if exc.name == f"mbnas.cli.{name}":
                continue
            raise
        module.register(sub)
    for command in _subparsers(sub):  # `mbnas evaluate ... --verbose` works too
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=VERBOSE_HELP)
        group_help(command, defaults=getattr(command, "defaults_from", None))
    return parser


VERBOSE_HELP = "show the warnings of third-party libraries (torch, MONAI, ...) too"


def _subparsers(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """Every command's parser, nested groups (`mbnas space cost`) included."""
    out = []
    for parser in dict.fromkeys(sub.choices.values()):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            out += [p for n in nested for p in _subparsers(n)]
        else:
            out.append(parser)
    return out


def quiet_third_party_warnings() -> None:
    """Hide warnings raised in other packages' code (a torch FutureWarning on every
    evaluate, report, predict and export): they are not the user's to act on.
    ``--verbose`` keeps them; mbnas's own warnings always show."""
    import warnings

    warnings.filterwarnings("ignore", module=r"(?!mbnas(\.|$))")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verbose", False):
        quiet_third_party_warnings()
    previous = _on_sigterm()
    try:
        from mbnas.cli.steps import command_line_sink
        from mbnas.progress import use_sink

        with use_sink(command_line_sink()):  # long steps: bars, or a line a minute
            code = args.handler(args)
    except MbnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system said no: one line naming the path
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except Terminated:
        print("terminated (SIGTERM): finished work is kept; run the same command again to "
              "resume.", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(code or EXIT_DONE)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``): unwinds like Ctrl-C, so atomic writes
    and resume work the same."""


def _on_sigterm() -> Any:
    """Make SIGTERM log a line (into the run's log, whose handler is attached while a
    command runs) and unwind; returns the previous handler (None: not the main thread)."""
    def handler(signum: int, frame: Any) -> None:
        logging.getLogger("mbnas").warning(
            "received SIGTERM: stopping; finished work is kept, the same command resumes")
        raise Terminated

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (a test, an embedding program)
        return None


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for an OSError (disk full, read-only, permission denied, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(str(p) for p in paths)
    return f"{where}: {reason}" if where else reason


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
