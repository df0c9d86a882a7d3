# What every dtl_mm config shares: the plugin import, its runner and hooks.
# The Swin-B / Swin-L values the configs use are in
# dtl_mm/models/swin_presets.py.
# Loads the plugin in our tools and in mmdet's / mmseg's own tools alike.
custom_imports = dict(imports=['dtl_mm'], allow_failed_imports=False)
# mmengine's Runner plus: the model config (num_classes / in_channels) and
# the data files checked before anything is built, every checkpoint read
# without running code from it and checked to fit the model, resume from
# the newest complete checkpoint, and `checkpointed_parts` applied
# non-reentrantly (dtl_mm/engine/runner/dtl_runner.py)
runner_type = 'DTLRunner'
# (Each config inheriting this file also sets default_hooks.checkpoint.
# backend_args=dict(backend='atomic_local'): checkpoints appear whole or not
# at all. mmengine refuses a key that two sibling bases define, and the
# library's default_runtime defines default_hooks.)
custom_hooks = [
    # the runner's checks and safe loading where a tool builds mmengine's
    # Runner whatever runner_type says (mmseg 1.2's tools/test.py)
    dict(type='ForeignRunnerHook'),
    dict(type='ParameterCountHook'),  # trainable / frozen per part
    dict(type='NonFiniteLossHook'),  # stop when the loss stays NaN/inf
    dict(type='RNGStateHook'),  # resume draws the same random numbers
    # resume says what the checkpoint decides against the config (changed
    # optimizer / schedule settings, another number of processes)
    dict(type='ResumeCheckHook'),
    dict(type='RankConsistencyHook'),  # ranks hold the same weights
]
