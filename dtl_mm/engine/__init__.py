"""Runner-side parts: the runner, hooks and the optimizer-wrapper
constructor."""
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
