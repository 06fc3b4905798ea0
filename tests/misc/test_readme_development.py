"""The README's development section names the packages that exist and no missing file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Development", 1)[1].split("\n## ", 1)[0]


def test_the_package_list_is_the_packages_of_src_mbnas() -> None:
    listed = re.search(r"`src/mbnas/\{([a-z_,]+)\}`", _section())
    assert listed, "the section lists the packages as src/mbnas/{...}"
    packages = {p.name for p in (ROOT / "src" / "mbnas").iterdir()
                if (p / "__init__.py").is_file()}
    assert set(listed.group(1).split(",")) == packages


def test_every_file_it_names_is_in_the_checkout() -> None:
    named = re.findall(r"`?([\w./-]+\.md)`?", _section())
    assert named
    for name in named:
        assert (ROOT / name).is_file() or (ROOT / "docs" / name).is_file(), name
