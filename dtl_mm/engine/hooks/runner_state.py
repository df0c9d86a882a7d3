"""What a hook needs to know of the run it is in, read in one place.

mmengine keeps both facts only in private attributes: the ``--resume``
request in ``Runner._resume`` (a runner built in Python may have none in
its config) and the loops in ``Runner._train_loop`` / ``_val_loop`` /
``_test_loop``, which ``Runner.train`` / ``Runner.test`` build before
``before_run`` (a loop not built is still a config dict there).
"""
from mmengine.runner import BaseLoop


def is_resuming(runner) -> bool:
    """The run resumes a checkpoint's training state (not ``load_from``)."""
    return bool(getattr(runner, '_resume', False))


def has_loop(runner, split: str) -> bool:
    """The run's ``split`` ('train', 'val', 'test') loop is built."""
    return isinstance(getattr(runner, f'_{split}_loop', None), BaseLoop)


def is_training(runner) -> bool:
    """The run trains (its training loop is built)."""
    return has_loop(runner, 'train')
