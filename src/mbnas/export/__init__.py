"""Taking a found network out of mbnas: nnU-Net v2 plans and ONNX files.

* :mod:`mbnas.export.nnunet`: :class:`~mbnas.export.nnunet.MBNASNetwork`, the class an
  nnU-Net v2 plans configuration names to build a genotype's network.
* :mod:`mbnas.export.nnunet_plans`: adds that configuration to a plans file
  (``mbnas export nnunet``).
* :mod:`mbnas.export.onnx`: one ``.onnx`` file per fold network of a model folder
  (``mbnas export onnx``) and the onnxruntime networks of ``mbnas predict --backend
  onnxruntime``.

Nothing here imports nnunetv2 or onnxruntime at import time: both are optional extras
(``mbnas[nnunet]``, ``mbnas[onnx]``).
"""
