"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing the package (configs do it through ``custom_imports``) registers
the backbones and hooks, routes every mmengine checkpoint load through the
safe loader (``checkpoint_schemes``), makes mmengine's local file writes
atomic (``atomic_io``) and lets ``mmseg::`` base configs resolve on forks of
the OpenMMLab stack (``config_packages``).
"""
from .checkpoint_schemes import register_safe_loaders
from .config_packages import resolve_forked_config_packages
from .version import __version__  # noqa: F401

register_safe_loaders()
resolve_forked_config_packages()

from . import (atomic_io, hooks, models, optim, resume,  # noqa: E402,F401
               strict_load)
