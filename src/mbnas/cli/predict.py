"""`mbnas predict`: segment new NIfTI scans with an exported model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mbnas.errors import EXIT_DONE, EXIT_REFUSED, ConfigError


def cmd_predict(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mbnas.api import predict
    from mbnas.inference.scans import find_scans
    from mbnas.inference.segment import check_output_folder

    check_output_folder(args.output)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    import torch

    from mbnas.training.cpus import default_threads

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    console = Console(stderr=True)
    print(f"segmenting {args.input} with {args.model} ({args.backend}, device {args.device}, "
          f"{threads} CPU thread(s){'' if args.threads else ', default; --threads N for more'})",
          flush=True)  # stdout: a refusal stays one line on stderr
    if Path(args.input).is_file():
        summary = predict(args.model, args.input, args.output, device=args.device,
                          batch_size=args.batch_size, backend=args.backend)
        print(f"wrote {summary.written[0]}")
        return 0
    total = len(find_scans(args.input))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[name]}"), console=console) as bar:
        task = bar.add_task("segmenting", total=total, name="")

        def on_scan(scan, path, error) -> None:
            bar.update(task, advance=1, name=scan.name)

        summary = predict(args.model, args.input, args.output, device=args.device,
                          batch_size=args.batch_size, on_scan=on_scan, backend=args.backend)
    print(f"wrote {len(summary.written)} label file(s) to {args.output}")
    if summary.failed:
        # Plain lines, never wrapped, so that file names can be copied.
        print(f"{len(summary.failed)} scan(s) failed:", file=sys.stderr)
        for name, message in summary.failed:
            print(f"  {name}: {message}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_DONE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="segment NIfTI scans with a trained model folder",
        description="Segment new scans with the networks of a model folder (written by "
                    "`mbnas evaluate`); with several weight files their softmax "
                    "probabilities are averaged. Input: one NIfTI file (3D, or 4D with the "
                    "channels on the last axis) or a folder of them, or a folder of nnU-Net "
                    "style CASE_0000.nii.gz, CASE_0001.nii.gz... channel files. Output: "
                    "OUT/<name>.nii.gz, uint8 labels on the scan's grid with its affine.")
    p.add_argument("--model", required=True, help="model folder holding model.json")
    p.add_argument("--input", required=True, help="a .nii/.nii.gz scan or a folder of scans")
    p.add_argument("--output", required=True, help="folder the label files are written to")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=16, help="slices per forward pass")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="torch (default: the model folder's weights) or onnxruntime (a folder "
                        "written by `mbnas export onnx`; needs mbnas[onnx])")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default 1: see `mbnas search --help`'s --threads)")
    p.set_defaults(handler=cmd_predict)
