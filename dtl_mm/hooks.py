"""Runner hooks of the plugin (registered in mmengine's root HOOKS, so both
mmdet- and mmseg-scoped configs find them)."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .models.recompute import enable_activation_checkpointing
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


def _bare_model(runner):
    return runner.model.module if is_model_wrapper(
        runner.model) else runner.model


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
        done = enable_activation_checkpointing(_bare_model(runner), names)
        runner.cfg.activation_checkpointing = None
        runner.logger.info(
            'activation_checkpointing (non-reentrant, in training only): ' +
            ', '.join(done))


def nonfinite_weights(model):
    """Names of the trainable weights holding a NaN / inf (one device sync
    for all of them)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        return []
    finite = torch.stack([torch.isfinite(p.detach()).all()
                          for _, p in params]).cpu()
    return [n for (n, _), ok in zip(params, finite.tolist()) if not ok]


def good_checkpoint(work_dir, tries=3):
    """(newest checkpoint of the work dir whose weights are all finite,
    newer ones that are not): a checkpoint saved just before the loss turned
    non-finite can already hold the blown-up weights."""
    from .checkpoint import load_checkpoint_file
    from .resume import latest_checkpoint, saved_checkpoints
    last, _ = latest_checkpoint(work_dir)
    candidates = ([last] if last else
                  []) + [p for p in saved_checkpoints(work_dir) if p != last]
    broken = []
    for path in candidates[:tries]:
        try:
            state = load_checkpoint_file(path).get('state_dict', {})
        except Exception:  # unreadable: not a good one either
            broken.append(path)
            continue
        if all(
                torch.isfinite(v).all() for v in state.values()
                if torch.is_tensor(v) and v.is_floating_point()):
            return path, broken
        broken.append(path)
    return None, broken


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
        bad = nonfinite_weights(_bare_model(runner))
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
        bad = nonfinite_weights(_bare_model(runner))
        if bad:
            self._stop(
                runner, f'refusing to save a checkpoint at iteration '
                f'{runner.iter}: {len(bad)} trainable weights are '
                f'non-finite (e.g. {bad[:3]})')


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the torch / numpy / python RNG states in each checkpoint and
    restores them on resume, so an interrupted-and-resumed run draws the same
    random numbers (RoI sampling, augmentation) as an uninterrupted one."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
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
            p.detach() for p in _bare_model(runner).parameters()
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
