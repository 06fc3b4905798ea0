"""`mbnas space ...`: inspect the search spaces, draw and cost architectures.

* ``mbnas space info --space NAME``: the searched variables, their options and the
  exact size (both phases for bilevel); for mbnas also the paper's 1.14e18.
* ``mbnas space convert STRING --out genotype.json`` (an authors' 40-digit string to
  JSON) and ``mbnas space convert genotype.json`` (back: prints the string).
* ``mbnas space draw GENOTYPE.json|unet [--out PREFIX]``: PREFIX.png and PREFIX.svg.
* ``mbnas space cost GENOTYPE.json|smp-unet|smp-resunet|unet --size 128
  [--base-channels 8]``: parameters, MACs (with the input size) and activation memory.

``mbnas.spaces.mbnas`` (and so torch) is imported inside the handlers only, so that other
command groups start fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mbnas.errors import ConfigError
from mbnas.spaces.registry import DEFAULT_SPACE, space_definition, space_names

if TYPE_CHECKING:
    from mbnas.spaces.mbnas.definitions import SearchSpace

_KIND_TEXT = {
    "a": ("level", "  (32 * 2**level channels; cell types follow from the levels)"),
    "b": ("block", ""),
    "c": ("kernel size", ""),
    "d": ("skip source", ""),  # the options' words follow from the space (SKIP_WORDS)
}
#: What each skip value means; `space info` lists only the values a space has.
SKIP_WORDS = {0: "none", 1: "nearest", 2: "second-nearest", 3: "both"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "space", help="inspect search spaces; draw and cost architectures",
        description="Inspect the search spaces; draw and cost architectures.",
    )
    sub = parser.add_subparsers(dest="space_command", required=True, metavar="SUBCOMMAND")

    info = sub.add_parser("info", help="variables, options and exact size of a space")
    info.add_argument("--space", default=DEFAULT_SPACE, choices=space_names(),
                      help=f"the search space (default {DEFAULT_SPACE}); a strategy bound "
                           "to the space (Bilevel-NAS on macro) adds its phases")
    info.add_argument("--max-depth", type=int, default=None,
                      help="deepest level allowed (default: the space's own; 3, the "
                           "authors' cap, for the paper's spaces: 128 px -> 16 px)")
    info.set_defaults(handler=cmd_info)

    convert = sub.add_parser(
        "convert", help="the authors' 40-digit genotype string to JSON, or back",
        description="STRING --out FILE.json writes the genotype; FILE.json (or a preset) "
                    "prints its authors' string.")
    convert.add_argument("genotype", help="an authors' string such as "
                                          "0320100012202000320031203001232111210121, "
                                          "a GENOTYPE.json or a preset name")
    convert.add_argument("--out", default=None, help="write the genotype JSON here")
    convert.set_defaults(handler=cmd_convert)

    draw = sub.add_parser("draw", help="draw a genotype as PNG and SVG")
    draw.add_argument("genotype", help="GENOTYPE.json (or a result file with a 'genotype' "
                                       "key, e.g. best.json) or a preset name (unet)")
    draw.add_argument("--out", default=None,
                      help="output prefix, or a .png/.svg name (default: the file's path "
                           "without .json, or the preset name); PREFIX.png and PREFIX.svg "
                           "are written")
    draw.add_argument("--title", default=None, help="figure title (default: the key)")
    draw.set_defaults(handler=cmd_draw)

    cost = sub.add_parser("cost", help="parameters, MACs and activation memory")
    cost.add_argument("architecture", help="GENOTYPE.json, a baseline (smp-unet, smp-resunet: "
                                           "smp networks) or a preset (unet: the U-Net "
                                           "genotype)")
    cost.add_argument("--size", type=int, default=128,
                      help="input height and width (default 128, the training size; the "
                           "paper's MMAC column used 32)")
    cost.add_argument("--in-channels", type=int, default=1,
                      help="input channels (default 1)")
    cost.add_argument("--classes", type=int, default=2,
                      help="output classes, background included (default 2)")
    cost.add_argument("--base-channels", type=int, default=None,
                      help="channels after the stem (default 32, the paper's; a demo or "
                           "quick-protocol network is narrower: pass its --base-channels)")
    cost.add_argument("--no-memory", action="store_true",
                      help="skip the activation-memory measurement")
    cost.set_defaults(handler=cmd_cost)


def _describe_space(space: SearchSpace, title: str, topology: str | None = None) -> list[str]:
    size = space.size()
    lines = [title, f"  {len(space.variables())} searched variables, max_depth {space.max_depth}"]
    n = space.n_nodes
    for kind in ("a", "b", "c", "d"):
        what, note = _KIND_TEXT[kind]
        if kind in space.searched:
            options = ", ".join(str(o) for o in space.options[kind])
            if kind == "d":
                note = "  (" + ", ".join(f"{o} {SKIP_WORDS.get(int(o), '?')}"
                                         for o in space.options[kind]) + ")"
            lines.append(f"  {kind}1..{kind}{n}  {what:<12} {options}{note}")
        else:
            values = ([str(lv) for lv in space.base.levels()[1:]] if kind == "a"
                      else [str(getattr(nd, _field(kind))) for nd in space.base.nodes])
            fixed = values[0] if len(set(values)) == 1 else " ".join(values)
            if topology is not None and kind in ("a", "d"):
                fixed = topology
            lines.append(f"  {kind}1..{kind}{n}  {what:<12} fixed: {fixed}")
    lines.append(f"  size: {size:,} valid genotypes ({size:.3g})")
    if getattr(space, "spatial_dims", 2) == 3:
        kernel_options = (space.options["c"] if "c" in space.searched
                          else sorted({nd.kernel for nd in space.base.nodes}))
        kernels = ", ".join(f"{k}x{k}x{k}" for k in kernel_options)
        lines.append(f"  3D (volumes): kernels {kernels}; a down/up cell at a level uses that "
                     "level's stride planned on the dataset (anisotropic axes are not halved "
                     "while coarser than twice the finest; docs/3d.md)")
    return lines


def _field(kind: str) -> str:
    from mbnas.spaces.mbnas.genotype import FIELDS

    return FIELDS[kind]


def cmd_info(args: argparse.Namespace) -> int:
    from mbnas.spaces.mbnas.definitions import get_space, kernel_space
    from mbnas.spaces.mbnas.genotype import Genotype, Node
    from mbnas.strategies import strategy_definition, strategy_names

    space = get_space(args.space, args.max_depth)
    definition = space_definition(space.name)
    lines = _describe_space(space, f"space {space.name}")
    if "a" not in space.searched:
        lines.append(f"  the fixed topology is the {definition.base} preset (see `mbnas "
                     f"space draw {definition.base}`)")
    if definition.paper_size is not None:
        from mbnas.spaces.registry import PAPER_SIZE_NOTE

        lines.append(f"  paper (section 2.1): {definition.paper_size:.3g}; exact here: "
                     f"{space.size():.3g}: {PAPER_SIZE_NOTE}")
    for name in strategy_names():
        strategy = strategy_definition(name)
        if strategy.space != space.name or not strategy.kernel_phase:
            continue
        # Any valid topology gives the same phase-2 size; a flat one is valid at any depth.
        flat = Genotype(tuple(Node("same", "vgg", 3, 0) for _ in space.base.nodes))
        phase2 = kernel_space(flat, args.max_depth)
        label = strategy.method or name
        lines += _describe_space(
            phase2, f"{label} (--strategy {name}) phase 2 (kernel_space(best topology of "
                    "this space): the same size for every topology)",
            topology="the best phase-1 topology")
        lines.append(f"networks reachable by the two phases (topology x kernels): "
                     f"{space.size() * phase2.size():,}")
    print("\n".join(lines))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from mbnas.io import atomic_write_text
    from mbnas.spaces.mbnas.authors import looks_like_authors_string, to_authors_string
    from mbnas.spaces.mbnas.load import load_genotype

    genotype = load_genotype(args.genotype)
    if looks_like_authors_string(args.genotype.strip()):
        print(genotype.describe())
        if args.out:
            atomic_write_text(Path(args.out), json.dumps(genotype.to_dict(), indent=2) + "\n")
            print(f"wrote {args.out}")
        return 0
    if args.out:
        raise ConfigError("--out is for an authors' string; a genotype file converts to "
                          "its string, which is printed")
    print(to_authors_string(genotype))
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from mbnas.spaces.mbnas.draw import draw_genotype
    from mbnas.spaces.mbnas.load import load_genotype

    genotype = load_genotype(args.genotype)
    if args.out:
        prefix = Path(args.out)
        if prefix.suffix.lower() in (".png", ".svg"):  # --out f.png means f.png, not f.png.png
            prefix = prefix.with_suffix("")
    else:
        spec = Path(args.genotype)
        prefix = spec.with_suffix("") if spec.is_file() else Path(
            args.genotype.removeprefix("preset:"))
    png, svg = draw_genotype(genotype, prefix, args.title)
    print(genotype.describe())
    print(f"wrote {png}")
    print(f"wrote {svg}")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from mbnas.costs.measure import cost_report
    from mbnas.spaces.mbnas.build import build_model
    from mbnas.spaces.mbnas.genotype import Genotype
    from mbnas.spaces.mbnas.load import load_architecture

    if not 1 <= args.size <= 8192:
        raise ConfigError(f"--size must be between 1 and 8192 pixels, got {args.size}")
    for flag, value in (("--in-channels", args.in_channels), ("--classes", args.classes)):
        if value < 1:
            raise ConfigError(f"{flag} must be positive, got {value}")
    architecture = load_architecture(args.architecture)
    if isinstance(architecture, Genotype):
        factor = 2 ** architecture.depth()
        label = f"genotype {architecture.key} (deepest level {architecture.depth()})"
    else:
        factor = 32  # smp encoders halve the resolution 5 times
        label = architecture.describe()
    if args.size % factor:
        raise ConfigError(
            f"--size {args.size} is not divisible by {factor}, which {args.architecture} "
            f"needs (it halves the resolution {factor.bit_length() - 1} times)"
        )
    extra = {} if args.base_channels is None else {"base_channels": args.base_channels}
    if args.base_channels is not None and args.base_channels < 4:
        raise ConfigError(f"--base-channels must be at least 4, got {args.base_channels}")
    model = build_model(architecture, args.in_channels, args.classes, **extra)
    report = cost_report(model, args.size, args.in_channels, args.classes,
                         memory=not args.no_memory, paper=True)
    print(f"architecture: {label}")
    print(report.format())
    return 0
