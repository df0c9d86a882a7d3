"""Stops a run whose model config does not fit its data or backbone."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checks.model_check import check_model_config
from .runner_state import is_resuming, is_training


@HOOKS.register_module()
class ModelCheckHook(Hook):
    """Checks the model config before the first iteration: the heads'
    num_classes must be the data set's classes and the neck's / heads'
    in_channels the backbone's outputs (:mod:`dtl_mm.checks.model_check`); a
    mismatch otherwise trains silently or fails deep in the first forward.

    A training run is also refused, as our tools refuse it, when it would
    start from a random frozen trunk without ``allow_random_trunk`` or
    overwrite the checkpoints of an earlier run in its work dir.

    In every shipped config, so mmdet's and mmseg's own tools and ``mim``
    run it too; our tools check before building the runner and leave this
    hook out.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        check_model_config(runner.cfg)
        if is_training(runner) and not is_resuming(runner):
            from ...apis.runner_setup import check_pretrained_trunk
            from ...checkpoint.resume import refuse_to_overwrite
            check_pretrained_trunk(runner.cfg)
            refuse_to_overwrite(runner.cfg)
