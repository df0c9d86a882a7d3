"""Checks that all ranks hold the same trainable weights."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...utils.model_unwrap import bare_model


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """Every ``interval`` iterations, at the end of every epoch and of
    training, checks that all ranks hold the same trainable weights (a
    float64 checksum per rank, computed where the weights are and
    all-gathered: two numbers per rank); a divergence (a rank that skipped a
    step, a missed all-reduce) raises instead of silently training N
    different models.

    Args:
        interval (int): iterations between checks; 0 checks only at epoch
            ends and the end of training. Defaults to 1000.
    """

    priority = 'LOW'

    def __init__(self, interval=1000):
        self.interval = interval

    def _check(self, runner, when):
        from mmengine.dist import all_gather, get_world_size
        if get_world_size() < 2:
            return
        params = [
            p.detach() for p in bare_model(runner.model).parameters()
            if p.requires_grad
        ]
        if not params:
            return
        total = torch.stack([
            torch.stack([d.sum(), (d * d).sum()])
            for d in (p.double() for p in params)
        ]).sum(0)
        sums = all_gather(total)
        if any(not torch.equal(sums[0].cpu(), s.cpu()) for s in sums[1:]):
            raise RuntimeError(
                f'trainable weights differ between ranks {when} '
                f'(checksums {[s.tolist() for s in sums]})')
        runner.logger.info(f'trainable weights identical on all '
                           f'{len(sums)} ranks {when}')

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self._check(runner, f'after iteration {runner.iter + 1}')

    def after_train_epoch(self, runner):
        # runner.epoch counts from 0 until the loop moves on
        self._check(runner, f'after epoch {runner.epoch + 1}')

    def after_train(self, runner):
        self._check(runner, f'after iteration {runner.iter} (end of '
                    f'training)')
