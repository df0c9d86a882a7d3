"""Stops a run whose model config does not fit its data or backbone."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checks.model_check import check_model_config


@HOOKS.register_module()
class ModelCheckHook(Hook):
    """Checks the model config before the first iteration: the heads'
    num_classes must be the data set's classes and the neck's / heads'
    in_channels the backbone's outputs (:mod:`dtl_mm.checks.model_check`); a
    mismatch otherwise trains silently or fails deep in the first forward.

    In every shipped config, so mmdet's and mmseg's own tools and ``mim``
    run it too; our tools check before building the runner and leave this
    hook out.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        check_model_config(runner.cfg)
