"""`mbnas export`: take a found network into nnU-Net v2 or ONNX."""

from __future__ import annotations

import argparse


def cmd_export_nnunet(args: argparse.Namespace) -> int:
    from mbnas.export.nnunet_plans import add_configuration, genotype_from_source, require_nnunet

    require_nnunet()
    genotype, searched = genotype_from_source(args.source)
    done = add_configuration(args.plans, genotype, name=args.name,
                             base_channels=args.base_channels, force=args.force,
                             source=str(args.source), searched=searched,
                             spatial_dims=args.dims)
    verb = "replaced" if done.replaced else "added"
    print(f"{verb} configuration '{done.name}' in {done.plans} (inherits "
          f"'{'2d' if len(done.patch_size) == 2 else '3d_fullres'}', patch size "
          f"{list(done.patch_size)}); previous plans kept as {done.backup}")
    for note in done.notes:
        print(f"note: {note}")
    print(f"next: nnUNetv2_train DATASET {done.name} FOLD")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from mbnas.export.onnx import export_onnx

    written = export_onnx(args.model_dir, args.out, opset=args.opset)
    print(f"wrote {len(written)} ONNX file(s) and model.json to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="take a found network into nnU-Net v2 or ONNX")
    ex = p.add_subparsers(dest="export_command", required=True, metavar="TARGET")

    n = ex.add_parser(
        "nnunet", help="add the network to an nnU-Net v2 plans file",
        description="Add a configuration to an nnU-Net v2 plans file that trains the given "
                    "genotype with nnU-Net's own pipeline. The configuration inherits "
                    "nnU-Net's '2d' configuration (its preprocessed data, patch and batch "
                    "size) and builds mbnas.export.nnunet.MBNASNetwork from the genotype in "
                    "its arch_kwargs. Then run nnU-Net's `nnUNetv2_train DATASET 2d_mbnas "
                    "FOLD`. Deep supervision works: the lower-scale outputs are the network's "
                    "output average-pooled. The plans file is written atomically; the first "
                    "export keeps nnU-Net's plans as <plans>.mbnas-backup.json (never "
                    "overwritten), later ones <plans>.mbnas-backup.2.json ... Names nnU-Net "
                    "uses, or that another configuration inherits from, are refused.")
    n.add_argument("source", metavar="RUN_DIR|GENOTYPE.json|AUTHORS_STRING",
                   help="a search run folder (its best network), a genotype or best.json "
                        "file, or the authors' 40-digit genotype string")
    n.add_argument("--plans", required=True, metavar="PATH",
                   help="nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json")
    n.add_argument("--name", default=None,
                   help="name of the configuration to add (default 2d_mbnas, or "
                        "3d_fullres_mbnas for a 3D network)")
    n.add_argument("--dims", type=int, choices=(2, 3), default=None,
                   help="2: inherit nnU-Net's '2d'; 3: inherit '3d_fullres' (its planned "
                        "strides become the network's per level); default: the search's "
                        "(a run folder of a 3D space is 3), else 2")
    n.add_argument("--base-channels", type=int, default=32, metavar="C",
                   help="channels after the stem (default 32, the paper's width; at most 512)")
    n.add_argument("--force", action="store_true",
                   help="replace a configuration an earlier export wrote under this name; "
                        "export a search of a dataset with other channels or classes")
    n.set_defaults(handler=cmd_export_nnunet)

    o = ex.add_parser(
        "onnx", help="write the networks of a model folder as ONNX files",
        description="Write one .onnx file per fold network of a model folder (written by "
                    "`mbnas evaluate`), exported with PyTorch's supported exporter, "
                    "torch.onnx.export(dynamo=True) (torch.export + onnxscript), with a "
                    "dynamic batch axis and a dynamic height and width (any multiple of "
                    "2**depth of the network). The output holds logits of shape (B, K, H, W) "
                    "for input (B, C, H, W). model.json (the preprocessing: slice size, "
                    "channel normalisation, labels) is copied with the file names added, so "
                    "`mbnas predict --model DIR --backend onnxruntime` runs them.")
    o.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder holding model.json")
    o.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    o.add_argument("--opset", type=int, default=18, help="ONNX opset version (default 18)")
    o.set_defaults(handler=cmd_export_onnx)
