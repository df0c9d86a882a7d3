"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing the package (configs do it through ``custom_imports``) registers the
backbones and hooks and lets torch's safe loader read mmengine checkpoints.
"""
from .checkpoint import allow_mmengine_checkpoint_types

allow_mmengine_checkpoint_types()

from . import atomic_io, hooks, models, optim, resume  # noqa: E402,F401

__version__ = '0.1.0'
