"""The plugin's runner, registered in mmengine's root ``RUNNERS``."""
from .dtl_runner import DTLRunner

__all__ = ['DTLRunner']
