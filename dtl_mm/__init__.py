"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing ``dtl_mm`` registers its modules (each class where it is
defined): the backbones and checkpointed RoI heads in mmengine's root
``MODELS``, ``DTLRunner`` in ``RUNNERS``, the hooks, the optimizer-wrapper
constructor, the metric and the ``atomic_local`` file backend; and it adds
the ``dtl_mm::`` config scope to mmengine's table of config packages
(:mod:`dtl_mm.process_changes` says what exactly, and why).
"""
from . import engine, evaluation, models  # noqa: F401
from .checkpoint import atomic_io  # noqa: F401 (the atomic_local backend)
from .process_changes import apply_process_changes
from .version import __version__  # noqa: F401

apply_process_changes()
