"""End to end with nnU-Net v2: plan, export the genotype, train with nnU-Net, predict.

Runs nnU-Net's own commands in subprocesses on a 4-case 32x32 phantom (the training
epoch is shortened by ``nnunet_short_train.py``, see there). The genotype is the U-Net
preset at 4 base channels (narrow, for speed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mbnas.cli import main
from mbnas.costs.measure import count_parameters
from mbnas.spaces.mbnas import build_network, preset

BIN = Path(sys.executable).parent
DATASET = "Dataset042_Phantom"
TRAINER = "nnUNetTrainer_1epoch"
HELPER = Path(__file__).with_name("nnunet_short_train.py")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.slow
def test_nnunet_trains_and_predicts_the_genotype(tmp_path: Path) -> None:
    raw, pre, res = tmp_path / "raw", tmp_path / "pre", tmp_path / "res"
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(res), "nnUNet_n_proc_DA": "1", "nnUNet_def_n_proc": "1",
           "OMP_NUM_THREADS": "1"}
    assert main(["phantom", "--task", "spleen", "--cases", "4", "--shape", "32", "32", "8",
                 "--format", "nnunet", "--out", str(raw / DATASET)]) == 0
    _run([str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", "42", "-c", "2d", "-np", "1",
          "-npfp", "1"],
         env, tmp_path)
    # nnU-Net's default 5 folds need 5 cases; its own splits file gives 2 folds of 4 cases.
    cases = [f"spleen_{i}" for i in range(1, 5)]
    (pre / DATASET / "splits_final.json").write_text(json.dumps(
        [{"train": cases[:3], "val": cases[3:]}, {"train": cases[1:], "val": cases[:1]}]))

    genotype = preset("unet")
    genotype_file = tmp_path / "genotype.json"
    genotype_file.write_text(json.dumps(genotype.to_dict()))
    plans = pre / DATASET / "nnUNetPlans.json"
    assert main(["export", "nnunet", str(genotype_file), "--plans", str(plans),
                 "--base-channels", "4"]) == 0

    _run([sys.executable, str(HELPER), "42", "2d_mbnas", "0", "-tr", TRAINER,
          "-device", "cpu"], {**env, "nnUNet_n_proc_DA": "0"}, tmp_path)
    fold = res / DATASET / f"{TRAINER}__nnUNetPlans__2d_mbnas" / "fold_0"
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu",
                            weights_only=False)
    assert checkpoint["init_args"]["configuration"] == "2d_mbnas"
    trained = sum(v.numel() for v in checkpoint["network_weights"].values()
                  if v.is_floating_point())
    reference = build_network(genotype, 1, 2, 4)
    assert trained == sum(v.numel() for v in reference.state_dict().values()
                          if v.is_floating_point())
    assert set(checkpoint["network_weights"]) == {f"network.{k}" for k in
                                                  reference.state_dict()}
    assert count_parameters(reference) > 0
    assert (fold / "validation" / "summary.json").is_file()

    inputs, out = tmp_path / "inputs", tmp_path / "predictions"
    inputs.mkdir()
    shutil.copy(raw / DATASET / "imagesTr" / "spleen_4_0000.nii.gz", inputs)
    _run([str(BIN / "nnUNetv2_predict"), "-i", str(inputs), "-o", str(out), "-d", "42",
          "-c", "2d_mbnas", "-f", "0", "-tr", TRAINER, "-chk", "checkpoint_final.pth",
          # -npp 0 -nps 0: nnU-Net's sequential mode, no spawned worker processes to start
          "--disable_tta", "-npp", "0", "-nps", "0", "-device", "cpu"], env, tmp_path)
    image = nib.load(inputs / "spleen_4_0000.nii.gz")
    label = nib.load(out / "spleen_4.nii.gz")
    assert label.shape == image.shape
    np.testing.assert_allclose(label.affine, image.affine, atol=1e-4)
    assert set(np.unique(np.asarray(label.dataobj))) <= {0, 1}
