"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing ``dtl_mm`` only registers its modules (each class where it is
defined): the backbones in mmengine's root ``MODELS``, the hooks, the
optimizer-wrapper constructor and the metric. The changes to how mmengine
loads and writes checkpoints are a separate, named import,
:mod:`dtl_mm.process_changes`, which every shipped config lists in
``custom_imports`` beside ``dtl_mm`` and our tools apply first.
"""
from . import engine, evaluation, models  # noqa: F401
from .version import __version__  # noqa: F401
