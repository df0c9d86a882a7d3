"""Refuses a checkpoint that does not fit the model or its training layout."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checkpoint.fit_check import check_checkpoint_fits
from ...checkpoint.safe_load import CheckpointError, checkpoint_source
from ...checkpoint.trained_config import check_trained_config
from .runner_state import is_resuming, is_training


@HOOKS.register_module()
class StrictLoadHook(Hook):
    """Refuses a ``load_from`` / ``--resume`` / test checkpoint that does not
    fit the model (see the module docstring), one trained with another
    backbone layout (:mod:`dtl_mm.checkpoint.trained_config`; only a
    warning for a ``load_from`` that starts a new training), and a
    ``--resume`` from a checkpoint without training state. Before the run
    loads anything it puts the safe checkpoint loaders in place
    (:mod:`dtl_mm.process_changes`), whatever the config imports."""

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        # Every load of a run (load_from, --resume, the test checkpoint, an
        # init_cfg URL) comes after before_run: applying the process changes
        # here makes them safe also in a run whose config imports dtl_mm but
        # not dtl_mm.process_changes, through any tool (idempotent).
        from ...process_changes import apply_process_changes
        apply_process_changes()

    def after_load_checkpoint(self, runner, checkpoint):
        name = checkpoint_source(checkpoint)
        resuming = is_resuming(runner)
        if resuming and 'message_hub' not in checkpoint:
            raise CheckpointError(
                f'{name} holds no training state (no message hub, '
                f'optimizer or scheduler: saved with --strip-optimizer, or '
                f'not a training checkpoint), so a run cannot resume from '
                f'it. To train further from its weights start a new run: '
                f'--cfg-options load_from={name.split(" (cached as")[0]} '
                f'(without --resume).')
        check_checkpoint_fits(runner.model, checkpoint)
        training = is_training(runner)
        check_trained_config(
            checkpoint, runner.cfg, name, strict=resuming or not training)
