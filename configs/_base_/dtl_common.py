# What every dtl_mm config shares: the plugin import and hooks, the Swin
# recipes' weight-decay exemptions, and Swin-B / Swin-L (window 7,
# ImageNet-22K) as backbone overrides for the other-size configs. The
# checkpoint is the official release file; point it at a local copy with
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/FILE.pth
swin_b = dict(
    embed_dims=128,
    depths=[2, 2, 18, 2],
    num_heads=[4, 8, 16, 32],
    window_size=7,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/SwinTransformer/storage/releases/'
        'download/v1.0.0/swin_base_patch4_window7_224_22k.pth'))
swin_l = dict(
    embed_dims=192,
    depths=[2, 2, 18, 2],
    num_heads=[6, 12, 24, 48],
    window_size=7,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/SwinTransformer/storage/releases/'
        'download/v1.0.0/swin_large_patch4_window7_224_22k.pth'))
swin_b_channels = [128, 256, 512, 1024]
swin_l_channels = [192, 384, 768, 1536]
# RetinaNet's FPN reads stages 1-3 only
swin_b_channels_1to3 = [256, 512, 1024]

# Loads the plugin in our tools and in mmdet's / mmseg's own tools alike.
custom_imports = dict(imports=['dtl_mm'], allow_failed_imports=False)
custom_hooks = [
    dict(type='ParameterCountHook'),  # trainable / frozen per part
    dict(type='NonFiniteLossHook'),  # stop when the loss stays NaN/inf
    dict(type='RNGStateHook'),  # resume draws the same random numbers
    dict(type='RankConsistencyHook'),  # ranks hold the same weights
    dict(type='StrictLoadHook'),  # a checkpoint must fit the model
]

# The Swin recipes exempt these from weight decay. mmengine matches the keys
# as substrings of parameter names; no CSN parameter name contains them
# (tests/test_configs.py checks it).
swin_decay_exemptions = {
    'absolute_pos_embed': dict(decay_mult=0.),
    'relative_position_bias_table': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.),
}
