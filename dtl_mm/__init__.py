"""DTL: Disentangled Transfer Learning for OpenMMLab dense prediction.

Configs load the plugin with ``custom_imports=dict(imports=['dtl_mm'])``.
Importing it registers the backbones, hooks and optimizer constructor (each
where it is defined) and applies the process-wide changes listed in
:mod:`dtl_mm.process_changes`: safe checkpoint loading, atomic local writes,
``mmseg::`` configs on forks of the stack.
"""
from .process_changes import apply_process_changes
from .version import __version__  # noqa: F401

apply_process_changes()

# the modules whose classes register themselves in mmengine's registries
from . import hooks, metrics, models, optim, strict_load  # noqa: E402,F401
