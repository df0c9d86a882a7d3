"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing the package (configs do it through ``custom_imports``) registers
the backbones and hooks, routes every mmengine checkpoint load through the
safe loader (``checkpoint_schemes``) and makes mmengine's local file writes
atomic (``atomic_io``).
"""
from .checkpoint_schemes import register_safe_loaders

register_safe_loaders()

from . import (atomic_io, hooks, models, optim, resume,  # noqa: E402,F401
               strict_load)

__version__ = '0.1.0'
