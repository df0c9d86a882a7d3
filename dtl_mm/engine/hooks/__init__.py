"""The plugin's runner hooks, each registered in mmengine's root ``HOOKS``
where it is defined, so mmdet- and mmseg-scoped configs both find them."""
from .foreign_runner_hook import ForeignRunnerHook
from .non_finite_loss_hook import NonFiniteLossHook
from .parameter_count_hook import ParameterCountHook
from .rank_consistency_hook import RankConsistencyHook
from .resume_check_hook import ResumeCheckHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'ForeignRunnerHook', 'NonFiniteLossHook', 'ParameterCountHook',
    'RankConsistencyHook', 'ResumeCheckHook', 'RNGStateHook'
]
