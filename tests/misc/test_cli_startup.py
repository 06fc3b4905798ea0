"""`mbnas --version`, `mbnas --help` and every `mbnas COMMAND --help` start light: they
import neither torch, MONAI, nibabel nor Ray (what they import is asserted, not the time)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mbnas.cli import build_parser

HEAVY = ("torch", "monai", "nibabel", "ray", "scipy")  # SciPy: 1.4 s of `mbnas --help`
SRC = Path(__file__).resolve().parents[2] / "src"

# Runs each argument list in turn in one fresh interpreter and reports, per command, the
# heavy packages in sys.modules after it (a later command would only add to them).
_PROBE = """
import contextlib, io, json, sys
from mbnas.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    out.append([argv, sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)])
print(json.dumps(out))
"""


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                   ) -> list[tuple[str, ...]]:
    out = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _command_paths(sub, (*path, name))
    return out


def test_version_and_every_help_import_no_heavy_library() -> None:
    commands = [["--version"]] + [[*p, "--help"] for p in _command_paths(build_parser())]
    assert len(commands) > 3  # the parser was walked, not an empty list
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    probe = f"HEAVY = {HEAVY!r}\n" + _PROBE
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(commands)], env=env,
                            capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [argv for argv, _ in report] == commands
    heavy = {" ".join(argv): mods for argv, mods in report if mods}
    assert not heavy, f"heavy imports at start-up: {heavy}"
