"""Stops a run whose data files are missing or broken, before it starts."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checks.data_check import check_data
from .runner_state import has_loop


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Reads the data files of the loops this run uses (train and val when
    training, test when testing) before the first iteration, and stops with
    a message naming the broken file (:mod:`dtl_mm.checks.data_check`). Rank 0
    checks, the others wait for its verdict; what was learnt about each file
    is cached, so unchanged data is not read again.

    In every shipped config, so mmdet's and mmseg's own tools and ``mim``
    run it too; our tools check before building the runner (or skip with
    ``--skip-data-check``) and leave this hook out. Elsewhere, drop it from
    ``custom_hooks`` to skip the check.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        splits = tuple(
            s for s in ('train', 'val', 'test') if has_loop(runner, s))
        if splits:
            check_data(runner.cfg, splits)
