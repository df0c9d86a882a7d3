"""Logs the trainable / frozen parameters per part."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...utils.model_unwrap import bare_model
from ...utils.param_count import count_parameters, format_counts


@HOOKS.register_module()
class ParameterCountHook(Hook):
    """Logs trainable / frozen parameters per part when training starts."""

    priority = 'VERY_LOW'

    def before_train(self, runner):
        runner.logger.info(
            'Parameters (trainable / frozen):\n' +
            format_counts(count_parameters(bare_model(runner.model))))
