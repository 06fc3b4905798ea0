"""`python -m mbnas.cli`: the same as the `mbnas` command."""

import sys

from mbnas.cli import main

sys.exit(main())
