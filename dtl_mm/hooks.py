"""Runner hooks of the plugin (registered in mmengine's root HOOKS, so both
mmdet- and mmseg-scoped configs find them)."""
import os.path as osp
import random

import numpy as np
import torch
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


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stops training at the first NaN / infinite loss, naming the iteration,
    before any checkpoint of the broken weights can be written (it runs
    ahead of CheckpointHook), so the last good checkpoint stays the latest.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        loss = (outputs or {}).get('loss')
        if loss is not None and not torch.isfinite(loss).all():
            last = osp.join(runner.work_dir, 'last_checkpoint')
            good = open(last).read().strip() if osp.isfile(last) else None
            raise FloatingPointError(
                f'non-finite loss ({loss.item()}) at iteration '
                f'{runner.iter + 1} (epoch {runner.epoch + 1}); training '
                f'stopped. Last good checkpoint: {good or "none saved yet"}')


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the torch / numpy / python RNG states in each checkpoint and
    restores them on resume, so an interrupted-and-resumed run draws the same
    random numbers (RoI sampling, augmentation) as an uninterrupted one."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(), numpy=np.random.get_state(),
            python=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint['rng_state']['cuda'] = torch.cuda.get_rng_state_all()

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('rng_state')
        if state is None or not runner._resume:
            return
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """At the end of every epoch and of training, checks that all ranks hold
    the same trainable weights (a float64 checksum, all-gathered); a
    divergence (a rank that skipped a step, a missed all-reduce) raises
    instead of silently training N different models."""

    priority = 'LOW'

    def _check(self, runner, when):
        from mmengine.dist import all_gather, get_world_size
        if get_world_size() < 2:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        total = torch.zeros(2, dtype=torch.float64)
        for p in model.parameters():
            if p.requires_grad:
                d = p.detach().double().cpu()
                total += torch.stack([d.sum(), (d * d).sum()])
        sums = all_gather(total.to(next(model.parameters()).device))
        if any(not torch.equal(sums[0].cpu(), s.cpu()) for s in sums[1:]):
            raise RuntimeError(
                f'trainable weights differ between ranks {when} '
                f'(checksums {[s.tolist() for s in sums]})')
        runner.logger.info(f'trainable weights identical on all '
                           f'{len(sums)} ranks {when}')

    def after_train_epoch(self, runner):
        self._check(runner, f'after epoch {runner.epoch}')

    def after_train(self, runner):
        self._check(runner, f'after iteration {runner.iter}')
