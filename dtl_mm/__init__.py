"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Importing the package (configs do it through ``custom_imports``) registers the
backbones and hooks, lets torch's safe loader read mmengine checkpoints and
lets ``mmseg::`` base configs resolve on forks of the OpenMMLab stack.
"""
from .checkpoint import allow_mmengine_checkpoint_types
from .config_packages import resolve_forked_config_packages
from .version import __version__  # noqa: F401

allow_mmengine_checkpoint_types()
resolve_forked_config_packages()

from . import atomic_io, hooks, models, optim  # noqa: E402,F401
