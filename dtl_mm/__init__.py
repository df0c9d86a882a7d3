"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing ``dtl_mm`` registers its modules (each class where it is
defined): the backbones in mmengine's root ``MODELS``, the hooks, the
optimizer-wrapper constructor and the metric; and it adds the ``dtl_mm::``
config scope to mmengine's table of config packages (nothing else in that
table changes), so that a user's own config can inherit ours with
``_base_ = 'dtl_mm::coco/...'``. The changes to how mmengine loads and
writes checkpoints are a separate, named import,
:mod:`dtl_mm.process_changes`, which every shipped config lists in
``custom_imports`` beside ``dtl_mm`` and our tools apply first.
"""
from . import engine, evaluation, models  # noqa: F401
from .utils.config_packages import register_own_configs
from .version import __version__  # noqa: F401

register_own_configs()
