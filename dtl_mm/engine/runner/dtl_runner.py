"""DTLRunner: mmengine's Runner with what a dtl_mm run must not do without.

Selected by the config's ``runner_type = 'DTLRunner'`` (every shipped
config sets it in ``configs/_base_/dtl_common.py``), which mmdet's
``tools/train.py`` / ``tools/test.py``, mmseg's ``tools/train.py``, ``mim``
and our tools honour, so none of this depends on a process-wide change.
mmseg 1.2's ``tools/test.py`` builds mmengine's ``Runner`` whatever the
config says; there ``ForeignRunnerHook`` does the same through
:func:`prepare_loop` and :func:`check_loaded_checkpoint`.
"""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from ...checkpoint.fit_check import check_checkpoint_fits
from ...checkpoint.resume import refuse_to_overwrite, resumable_checkpoint
from ...checkpoint.safe_load import CheckpointError, checkpoint_source
from ...checkpoint.schemes import safe_checkpoint_schemes
from ...checkpoint.trained_config import check_trained_config
from ...checks.data_check import check_data
from ...checks.model_check import check_model_config, check_pretrained_trunk
from ...models.recompute import (CONFIG_KEY, checkpointing_requested,
                                 enable_activation_checkpointing)
from ...utils.model_unwrap import bare_model
from ..hooks.runner_state import is_resuming, is_training


@RUNNERS.register_module()
class DTLRunner(Runner):
    """mmengine's ``Runner``, plus, in the order a run meets them:

    1. **Before anything is built** (:meth:`from_cfg`): the model config
       check (:func:`~dtl_mm.checks.model_check.check_model_config`: the
       heads' ``num_classes`` against the data set, ``in_channels`` against
       the backbone, the DTL block options; mmengine's reentrant
       ``activation_checkpointing`` key refused).
    2. **Before a loop builds its data set** (:meth:`train`, :meth:`val`,
       :meth:`test`): that split's data files are read
       (:mod:`dtl_mm.checks.data_check`; the config's ``check_data = False``
       skips it).
       A new training must load a pretrained trunk (or say
       ``allow_random_trunk = True``) and must not overwrite the
       checkpoints of an earlier run in its work dir.
    3. **Activation checkpointing** of the parts the config's
       ``checkpointed_parts`` key names, non-reentrant
       (:func:`~dtl_mm.models.recompute.enable_activation_checkpointing`).
    4. **Every checkpoint read** while it trains, validates, tests or loads
       (``load_from``, ``--resume``, any module's ``init_cfg``) goes through
       the safe loader (:func:`~dtl_mm.checkpoint.schemes.
       safe_checkpoint_schemes`), and a loaded checkpoint must fit the
       model and its training layout; resuming needs the training state.
    5. **Resume without a file** continues the newest complete checkpoint
       of the work dir (:func:`~dtl_mm.checkpoint.resume.
       resumable_checkpoint`), not a truncated one.

    Checkpoints are written atomically by the config's file backend
    (``default_hooks.checkpoint.backend_args = dict(backend='atomic_local')``),
    not by the runner.

    Attributes:
        check_data (bool): read the data files before a loop starts
            (unless the config says ``check_data = False``); our tools,
            which check before building the runner, turn it off.
    """

    check_data = True

    @classmethod
    def from_cfg(cls, cfg) -> 'DTLRunner':
        check_model_config(cfg)
        return super().from_cfg(cfg)

    def train(self):
        self._choose_resume_checkpoint()
        prepare_loop(
            self, ('train', 'val') if self._val_loop else ('train', ),
            training=True)
        with safe_checkpoint_schemes():
            return super().train()

    def val(self) -> dict:
        prepare_loop(self, ('val', ))
        with safe_checkpoint_schemes():
            return super().val()

    def test(self) -> dict:
        prepare_loop(self, ('test', ))
        with safe_checkpoint_schemes():
            return super().test()

    def _choose_resume_checkpoint(self):
        """Resume without a file: the newest complete checkpoint (mmengine
        would take whatever ``last_checkpoint`` names); with none, a new
        training."""
        if not self._has_loaded and self._resume and self._load_from is None:
            self._load_from = resumable_checkpoint(self.work_dir)
            self._resume = self._load_from is not None

    def load_or_resume(self):
        self._choose_resume_checkpoint()
        super().load_or_resume()

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys=[(r'^module.', '')]):
        """mmengine's ``Runner.load_checkpoint`` (the same steps), with the
        file read by the safe loader and checked before any weight is
        loaded: mmengine loads with ``strict=False``, so a checkpoint of
        another model would only warn."""
        with safe_checkpoint_schemes():
            checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        check_loaded_checkpoint(self, checkpoint, filename)
        model = bare_model(self.model)
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint


# -- what the runner does, also for a runner that ignores runner_type ------
def check_new_training(cfg):
    """A new training must load a pretrained trunk (or opt out) and must not
    overwrite the checkpoints of an earlier run in its work dir."""
    check_pretrained_trunk(cfg)
    refuse_to_overwrite(cfg)


def prepare_loop(runner, splits, training=False):
    """What comes before a loop runs: for a new training its checks; the
    data files of ``splits`` (unless the runner's ``check_data`` or the
    config's ``check_data = False`` turns that off); for a training the
    config's ``checkpointed_parts``."""
    if training and not is_resuming(runner):
        check_new_training(runner.cfg)
    if getattr(runner, 'check_data', True) and \
            runner.cfg.get('check_data', True):
        check_data(runner.cfg, splits)
    if training:
        apply_checkpointed_parts(runner)


def apply_checkpointed_parts(runner):
    """The config's ``checkpointed_parts`` (and a checkpointed RoI head
    type), non-reentrant, logged."""
    parts = checkpointing_requested(runner.cfg)  # an RoI head by its type
    if parts:
        done = enable_activation_checkpointing(bare_model(runner.model), parts)
        runner.logger.info(f'{CONFIG_KEY} (non-reentrant, in training '
                           f'only): ' + ', '.join(done))


def check_loaded_checkpoint(runner, checkpoint, filename=None):
    """A loaded checkpoint must fit the model and the backbone layout it
    was trained with (only a warning for a ``load_from`` that starts a new
    training); resuming needs its training state."""
    name = checkpoint_source(checkpoint)
    if name == 'the checkpoint' and filename:
        name = filename
    resuming = is_resuming(runner)
    if resuming and 'message_hub' not in checkpoint:
        raise CheckpointError(
            f'{name} holds no training state (no message hub, '
            f'optimizer or scheduler: saved with --strip-optimizer, or '
            f'not a training checkpoint), so a run cannot resume from '
            f'it. To train further from its weights start a new run: '
            f'--cfg-options load_from={name.split(" (cached as")[0]} '
            f'(without --resume).')
    check_checkpoint_fits(runner.model, checkpoint, name)
    check_trained_config(
        checkpoint,
        runner.cfg,
        name,
        strict=resuming or not is_training(runner))
