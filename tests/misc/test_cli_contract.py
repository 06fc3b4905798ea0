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


def test_search_help_is_grouped_and_shows_the_config_defaults() -> None:
    import dataclasses

    from mbnas.commands.search.run import SearchConfig

    parser = dict(_parsers(build_parser()))["mbnas search"]
    text = parser.format_help()
    for title in ("data:", "search:", "protocol:", "execution:", "output:"):
        assert f"\n{title}\n" in text
    budget = next(f.default for f in dataclasses.fields(SearchConfig) if f.name == "budget")
    section = text.split("\nsearch:\n", 1)[1].split("\n\n", 1)[0]
    assert f"(default: {budget})" in " ".join(section.split())


def test_train_refuses_seeds_it_would_ignore(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["train", "data", "--seeds", "3"])
    assert info.value.code == 2 and "unrecognized arguments: --seeds 3" in capsys.readouterr().err


def test_third_party_warnings_reach_stderr_only_with_verbose(tmp_path: Path) -> None:
    """smp's import raises a torch FutureWarning: hidden, unless --verbose."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-W", "default", "-m", "mbnas.cli", "space", "cost", "smp-unet",
            "--size", "32", "--no-memory"]
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    loud = subprocess.run([*argv, "--verbose"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert quiet.returncode == loud.returncode == 0
    assert "Warning" in loud.stderr and "Warning" not in quiet.stderr
