"""Test helper: nnU-Net's own ``nnUNetv2_train`` entry point with a shorter epoch.

``nnUNetTrainer_1epoch`` runs 250 training and 50 validation iterations, several minutes
on a 2-core CPU. nnU-Net finds trainer classes only inside its own package, so a trainer
defined in test code cannot be named with ``-tr``; instead this script shortens
``nnUNetTrainer_1epoch`` (2 + 1 iterations, no mirroring, so the final validation runs
without test-time mirroring) and then runs nnU-Net's unchanged command line. The checkpoint names
``nnUNetTrainer_1epoch``, so the stock ``nnUNetv2_predict`` loads it. Users run
``nnUNetv2_train DATASET 2d_mbnas FOLD`` itself.

Usage: python nnunet_short_train.py DATASET CONFIGURATION FOLD [nnUNetv2_train options]
"""

from __future__ import annotations

import sys

from nnunetv2.run.run_training import run_training_entry
from nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs import (
    nnUNetTrainer_1epoch,
)

_start = nnUNetTrainer_1epoch.on_train_start


def _short_start(self) -> None:
    # Set here, not in __init__: nnU-Net records __init__'s arguments by inspecting it.
    self.num_iterations_per_epoch = 2
    self.num_val_iterations_per_epoch = 1
    _start(self)


def _no_mirroring(self) -> tuple:
    rotation, do_dummy_2d, initial_patch, _ = _configure(self)
    self.inference_allowed_mirroring_axes = None
    return rotation, do_dummy_2d, initial_patch, None


_configure = nnUNetTrainer_1epoch.configure_rotation_dummyDA_mirroring_and_inital_patch_size
nnUNetTrainer_1epoch.on_train_start = _short_start
nnUNetTrainer_1epoch.configure_rotation_dummyDA_mirroring_and_inital_patch_size = _no_mirroring

if __name__ == "__main__":
    sys.argv = ["nnUNetv2_train", *sys.argv[1:]]
    sys.exit(run_training_entry())
