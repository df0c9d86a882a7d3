"""Stops training on a loss that stays NaN / inf, naming the last good
checkpoint."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checkpoint.resume import good_checkpoint
from ...utils.model_unwrap import bare_model


def nonfinite_weights(model):
    """Names of the trainable weights holding a NaN / inf (one device sync
    for all of them)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        return []
    finite = torch.stack([torch.isfinite(p.detach()).all()
                          for _, p in params]).cpu()
    return [n for (n, _), ok in zip(params, finite.tolist()) if not ok]


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stops training when the loss stays NaN / infinite or the weights
    become non-finite, naming the iteration and the last good checkpoint.

    A single non-finite loss is not fatal: under AMP with dynamic loss
    scaling the scaler skips that step and the weights stay good, so
    training stops only after ``max_consecutive`` non-finite losses in a row
    (each one is logged), or at once when a trainable weight is no longer
    finite. No checkpoint of non-finite weights is ever saved
    (``before_save_checkpoint`` refuses it), and this hook runs ahead of
    CheckpointHook (priority VERY_HIGH), so the last good checkpoint stays
    the latest one.

    Args:
        max_consecutive (int): non-finite losses in a row that stop
            training. Defaults to 3.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_consecutive=3):
        if not isinstance(max_consecutive, int) or max_consecutive < 1:
            raise ValueError(f'NonFiniteLossHook: max_consecutive must be a '
                             f'positive int, got {max_consecutive!r}')
        self.max_consecutive = max_consecutive
        self.in_a_row = 0

    def _stop(self, runner, what):
        good, broken = good_checkpoint(runner.work_dir)
        note = (f'; newer checkpoints with non-finite weights (do not '
                f'resume from them): {broken}' if broken else '')
        raise FloatingPointError(
            f'{what}; training stopped. Last good checkpoint: '
            f'{good or "none saved yet"}{note}')

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        loss = (outputs or {}).get('loss')
        if loss is None or torch.isfinite(loss).all():
            self.in_a_row = 0
            return
        self.in_a_row += 1
        what = (f'non-finite loss ({loss.item()}) at iteration '
                f'{runner.iter + 1} (epoch {runner.epoch + 1})')
        bad = nonfinite_weights(bare_model(runner.model))
        if bad:
            self._stop(
                runner, f'{what}, and {len(bad)} trainable weights '
                f'are now non-finite (e.g. {bad[:3]})')
        if self.in_a_row >= self.max_consecutive:
            self._stop(runner, f'{what}, {self.in_a_row} iterations in a '
                       f'row')
        runner.logger.warning(
            f'{what}: step skipped, the weights are still finite '
            f'({self.in_a_row} of {self.max_consecutive} in a row stop '
            f'training)')

    def before_save_checkpoint(self, runner, checkpoint):
        bad = nonfinite_weights(bare_model(runner.model))
        if bad:
            self._stop(
                runner, f'refusing to save a checkpoint at iteration '
                f'{runner.iter}: {len(bad)} trainable weights are '
                f'non-finite (e.g. {bad[:3]})')
