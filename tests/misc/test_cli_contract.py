"""The command line's contract: every flag is explained, and the exit codes are the
README's table."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from mbnas import errors
from mbnas.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _parsers(parser: argparse.ArgumentParser, path: str = "mbnas"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                name = "/".join(action.option_strings) or action.dest
                missing.append(f"{path} {name}")
    assert not missing, f"options without help text: {missing}"


def test_exit_codes_are_the_readme_table() -> None:
    text = README.read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table = {int(code): meaning.strip() for code, meaning in
             re.findall(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*$", section, flags=re.M)}
    constants = {getattr(errors, n): n for n in dir(errors) if n.startswith("EXIT_")}
    assert set(table) == set(constants), (table, constants)
    assert table[errors.EXIT_DONE] == "done"
    assert table[errors.EXIT_RUNS_FAILED].startswith("finished, but some training runs failed")
    assert table[errors.EXIT_REFUSED].startswith("bad input or refused")
    assert table[errors.EXIT_INTERRUPTED].startswith("interrupted")
    assert errors.MbnasError.exit_code == errors.EXIT_REFUSED
