"""What a checkpoint that cannot be used raises; the message names the
file (or the model's config) and what was expected."""


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used (unreadable, unsafe, of another
    model, of another training)."""


class CheckpointLayoutError(ValueError):
    """A file does not hold the configured trunk: none, several, another
    architecture, or weights that would stay random."""
