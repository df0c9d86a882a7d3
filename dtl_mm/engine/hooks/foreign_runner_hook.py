"""DTLRunner's checks for a tool that builds mmengine's own Runner."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...checkpoint.schemes import safe_checkpoint_schemes
from ...checks.model_check import check_model_config
from .runner_state import has_loop, is_training


@HOOKS.register_module()
class ForeignRunnerHook(Hook):
    """Does what ``DTLRunner`` does, as hook events, in a run whose tool
    builds mmengine's ``Runner`` whatever the config's ``runner_type`` says
    (mmseg 1.2's ``tools/test.py`` calls ``Runner.from_cfg``): the model
    config check, the data check (unless ``check_data = False``), the
    new-training checks, ``checkpointed_parts``, safe loading of every
    checkpoint the run reads and the fit of a loaded checkpoint. Under a
    ``DTLRunner`` it does nothing. In every shipped config
    (``configs/_base_/dtl_common.py``).
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._schemes = None

    @staticmethod
    def _foreign(runner) -> bool:
        from ..runner.dtl_runner import DTLRunner
        return not isinstance(runner, DTLRunner)

    def before_run(self, runner):
        if not self._foreign(runner):
            return
        from ..runner.dtl_runner import prepare_loop
        check_model_config(runner.cfg)
        splits = tuple(
            s for s in ('train', 'val', 'test') if has_loop(runner, s))
        if splits:
            prepare_loop(runner, splits, training=is_training(runner))
        # load_from, --resume, the test checkpoint and init_cfg files are
        # all read after before_run; restored in after_run
        self._schemes = safe_checkpoint_schemes()
        self._schemes.__enter__()

    def after_load_checkpoint(self, runner, checkpoint):
        if self._foreign(runner):
            from ..runner.dtl_runner import check_loaded_checkpoint
            check_loaded_checkpoint(runner, checkpoint)

    def after_run(self, runner):
        if self._schemes is not None:
            self._schemes.__exit__(None, None, None)
            self._schemes = None
