"""The plugin's runner hooks, each registered in mmengine's root ``HOOKS``
where it is defined, so mmdet- and mmseg-scoped configs both find them."""
from .activation_checkpointing_hook import ActivationCheckpointingHook
from .data_check_hook import DataCheckHook
from .model_check_hook import ModelCheckHook
from .non_finite_loss_hook import NonFiniteLossHook
from .parameter_count_hook import ParameterCountHook
from .rank_consistency_hook import RankConsistencyHook
from .resume_check_hook import ResumeCheckHook
from .rng_state_hook import RNGStateHook
from .strict_load_hook import StrictLoadHook

__all__ = [
    'ActivationCheckpointingHook', 'DataCheckHook', 'ModelCheckHook',
    'NonFiniteLossHook', 'ParameterCountHook', 'RankConsistencyHook',
    'ResumeCheckHook', 'RNGStateHook', 'StrictLoadHook'
]
