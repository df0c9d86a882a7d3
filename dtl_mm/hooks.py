"""Runner hooks of the plugin (registered in mmengine's root HOOKS, so both
mmdet- and mmseg-scoped configs find them)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .param_count import count_parameters, format_counts


@HOOKS.register_module()
class ParameterCountHook(Hook):
    """Logs trainable / frozen parameters per part when training starts."""

    priority = 'VERY_LOW'

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        runner.logger.info('Parameters (trainable / frozen):\n' +
                           format_counts(count_parameters(model)))
