# What every dtl_mm config shares: the plugin import and its hooks. The
# Swin-B / Swin-L values the configs use are in dtl_mm/swin_presets.py.
# Loads the plugin in our tools and in mmdet's / mmseg's own tools alike.
custom_imports = dict(imports=['dtl_mm'], allow_failed_imports=False)
custom_hooks = [
    dict(type='ParameterCountHook'),  # trainable / frozen per part
    dict(type='NonFiniteLossHook'),  # stop when the loss stays NaN/inf
    dict(type='RNGStateHook'),  # resume draws the same random numbers
    dict(type='RankConsistencyHook'),  # ranks hold the same weights
    dict(type='StrictLoadHook'),  # a checkpoint must fit the model
    # applies `activation_checkpointing = [...]` non-reentrantly (mmengine's
    # own reentrant wrapper gives a frozen trunk's neck no gradients)
    dict(type='ActivationCheckpointingHook'),
]
