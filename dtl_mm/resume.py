"""Finding the checkpoint to resume from, and refusing one of another model
before mmengine fails on it without naming the file."""
import os
import os.path as osp
import re

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_\d+\.pth$')


def saved_checkpoints(work_dir):
    """The epoch_N.pth / iter_N.pth files of a work dir, newest first."""
    try:
        names = [n for n in os.listdir(work_dir) if CHECKPOINT_NAME.match(n)]
    except OSError:
        return []
    paths = [osp.join(work_dir, n) for n in names]
    return sorted(paths, key=osp.getmtime, reverse=True)


def latest_checkpoint(work_dir):
    """(checkpoint path or None, note on how it was found).

    ``last_checkpoint`` names the latest save; when it is missing, empty or
    names a file that is gone (a save interrupted before mmengine wrote it,
    a work dir moved), the newest ``epoch_N.pth`` / ``iter_N.pth`` of the
    work dir is taken instead, so a complete checkpoint is never ignored.
    """
    if not osp.isdir(work_dir):
        return None, f'the work dir {work_dir} does not exist'
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named, ''
        moved = osp.join(work_dir, osp.basename(named)) if named else ''
        if moved and osp.isfile(moved):  # a work dir moved or renamed
            return moved, f'{last} names {named}, found in the work dir'
        note = (f'{last} is empty' if not named else
                f'{last} names {named}, which does not exist')
    else:
        note = f'no {last}'
    found = saved_checkpoints(work_dir)
    if found:
        return found[0], f'{note}; the newest checkpoint file is used'
    return None, f'{note} and no epoch_*.pth / iter_*.pth in {work_dir}'


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """On ``--resume``, checks that the checkpoint holds this model's
    weights (same names and shapes, every trainable weight present) before
    mmengine loads it; a checkpoint of another task or model otherwise
    fails later in the optimizer ("different number of parameter groups")
    without naming the file. Frozen weights may be absent (checkpoints that
    keep only the trained weights)."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint):
        if not runner._resume:
            return  # load_from: a partial fit (fine-tuning) is legitimate
        name = runner._load_from or 'the checkpoint'
        state = checkpoint.get('state_dict') if isinstance(
            checkpoint, dict) else None
        if not isinstance(state, dict):
            raise RuntimeError(f'{name}: not a training checkpoint (no '
                               f'state_dict); cannot resume from it')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        own = model.state_dict()
        trainable = {n for n, p in model.named_parameters()
                     if p.requires_grad}
        unexpected = [k for k in state if k not in own]
        shapes = [f'{k}: checkpoint {tuple(v.shape)} vs model '
                  f'{tuple(own[k].shape)}' for k, v in state.items()
                  if k in own and hasattr(v, 'shape')
                  and tuple(v.shape) != tuple(own[k].shape)]
        missing = sorted(trainable - set(state))
        if unexpected or shapes or missing:
            parts = [f'{len(x)} {what}, e.g. {x[:3]}' for what, x in (
                ('weights this model does not have', unexpected),
                ('of another shape', shapes),
                ('trainable weights of this model missing', missing)) if x]
            raise RuntimeError(
                f'cannot resume from {name}: it holds another model\'s '
                f'weights (another task, backbone or variant?): '
                f'{"; ".join(parts)}. Resume from a checkpoint of this '
                f'config, or start from it with load_from=... instead of '
                f'--resume')
