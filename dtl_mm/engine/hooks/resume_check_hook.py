"""Says what a resumed run keeps from its checkpoint that the config now
sets otherwise: optimizer and schedule settings, and the number of
processes."""
from typing import Dict, List

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from .runner_state import is_resuming

# config keys whose values a resumed run takes from the checkpoint: the
# optimizer's state holds its hyper-parameters (lr, weight decay, betas,
# momentum) per parameter group, and each scheduler's state its own
# settings and base values, and both replace what the config built
RESTORED = ('optim_wrapper', 'param_scheduler')


def flatten(value, prefix: str = '') -> Dict[str, object]:
    """{'a.b.0.c': leaf}: the leaves of nested dicts and lists."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, item in items:
        out.update(flatten(item, f'{prefix}.{key}' if prefix else str(key)))
    return out


def restored_differences(saved_cfg: dict, cfg: dict) -> List[str]:
    """'optim_wrapper.optimizer.lr: 0.0001 in the checkpoint, 0.001 now' for
    each optimizer / schedule setting the config changed."""
    lines = []
    for key in RESTORED:
        old = flatten(saved_cfg.get(key), key)
        new = flatten(cfg.get(key), key)
        for path in sorted(set(old) | set(new)):
            if old.get(path, '<unset>') != new.get(path, '<unset>'):
                lines.append(f'{path}: {old.get(path, "<unset>")!r} in the '
                             f'checkpoint, {new.get(path, "<unset>")!r} now')
    return lines


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Warns, at resume, about what the checkpoint decides against the
    config, so that no change is lost silently.

    - Optimizer and schedule settings (``optim_wrapper``,
      ``param_scheduler``) changed since the checkpoint was saved: mmengine
      restores the optimizer's and the schedulers' states, which carry their
      own values, so the checkpoint's win. The warning names each changed
      setting with both values, and how to train with the new ones (a new
      run from the weights, ``load_from``).
    - Another number of processes: the total batch changes while the
      learning rate stays the checkpoint's. The warning names both world
      sizes and both total batches; with ``auto_scale_lr`` enabled it says
      that the resumed optimizer state replaced the scaled rate.

    The world size is recorded in each checkpoint's ``meta`` for this.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint.setdefault('meta', {})['world_size'] = runner.world_size

    def after_load_checkpoint(self, runner, checkpoint):
        # load_from (weights only) restores no optimizer state
        if not is_resuming(runner):
            return
        meta = checkpoint.get('meta') or {}
        lines = []
        saved = meta.get('cfg')
        if saved:
            try:
                saved_cfg = Config.fromstring(saved, file_format='.py')
            except Exception:  # an unreadable record is no reason to stop
                saved_cfg = None
            if saved_cfg is not None:
                changed = restored_differences(saved_cfg.to_dict(),
                                               runner.cfg.to_dict())
                if changed:
                    lines.append(
                        'the resumed optimizer and scheduler states keep '
                        'the checkpoint\'s settings; these changed since '
                        'it was saved and have no effect: ' +
                        '; '.join(changed) + '. To train with the new '
                        'values, start a new run from its weights '
                        '(load_from=CHECKPOINT, without --resume).')
        lines += self._world_size_lines(runner, meta)
        for line in lines:
            print_log(f'resume: {line}', logger='current', level=30)

    @staticmethod
    def _world_size_lines(runner, meta) -> List[str]:
        before, now = meta.get('world_size'), runner.world_size
        if before is None or before == now:
            return []
        per_process = runner.cfg.get('train_dataloader', {}).get('batch_size')
        batch = '' if per_process is None else (
            f' (a total batch of {before * per_process} then, '
            f'{now * per_process} now)')
        line = (f'the checkpoint was saved by {before} processes, this run '
                f'has {now}{batch}; the learning rate stays the '
                f'checkpoint\'s')
        scale = runner.cfg.get('auto_scale_lr') or {}
        if scale.get('enable'):
            line += (': auto_scale_lr scaled the configured rate to the new '
                     'total batch, and the resumed optimizer state replaced '
                     'it')
        return [line + '.']
