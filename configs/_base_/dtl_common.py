# What every dtl_mm config shares: the plugin import and its hooks. The
# Swin-B / Swin-L values the configs use are in dtl_mm/models/swin_presets.py.
# Loads the plugin in our tools and in mmdet's / mmseg's own tools alike.
# dtl_mm registers the plugin's modules; dtl_mm.process_changes makes
# mmengine load checkpoints without running code from them and write them
# atomically (the reasons are in that module's docstring)
custom_imports = dict(
    imports=['dtl_mm', 'dtl_mm.process_changes'], allow_failed_imports=False)
custom_hooks = [
    # before the first iteration, in any tool: num_classes / in_channels
    # fit, and the data files are there and readable
    dict(type='ModelCheckHook'),
    dict(type='DataCheckHook'),
    dict(type='ParameterCountHook'),  # trainable / frozen per part
    dict(type='NonFiniteLossHook'),  # stop when the loss stays NaN/inf
    dict(type='RNGStateHook'),  # resume draws the same random numbers
    # resume says what the checkpoint decides against the config (changed
    # optimizer / schedule settings, another number of processes)
    dict(type='ResumeCheckHook'),
    dict(type='RankConsistencyHook'),  # ranks hold the same weights
    dict(type='StrictLoadHook'),  # a checkpoint must fit the model
    # applies `activation_checkpointing = [...]` non-reentrantly (mmengine's
    # own reentrant wrapper gives a frozen trunk's neck no gradients)
    dict(type='ActivationCheckpointingHook'),
]
