"""Applies the config's ``activation_checkpointing`` key non-reentrantly."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.recompute import enable_activation_checkpointing
from ...utils.model_unwrap import bare_model


@HOOKS.register_module()
class ActivationCheckpointingHook(Hook):
    """Applies the config's ``activation_checkpointing = [part, ...]`` with
    the non-reentrant checkpoint API (``models/recompute.py``).

    mmengine reads the same key after ``before_run`` and wraps each part's
    ``forward`` with the reentrant API, which computes no gradients for a
    region whose tensor inputs do not require grad: behind a frozen trunk
    the neck (whose inputs also arrive in a tuple) and heads would silently
    stop training. This hook applies the key first, part by part as each
    kind of part needs, and clears it in the runner's config so that
    mmengine's wrapper never runs. Every shipped config has this hook.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        names = runner.cfg.get('activation_checkpointing')
        if not names:
            return
        done = enable_activation_checkpointing(bare_model(runner.model), names)
        runner.cfg.activation_checkpointing = None
        runner.logger.info(
            'activation_checkpointing (non-reentrant, in training only): ' +
            ', '.join(done))
