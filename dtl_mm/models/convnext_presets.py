"""The ConvNeXt values the configs use, in one place."""

# mmpretrain's ConvNeXt-B as mmdet's and mmseg's ConvNeXt configs build it:
# four stage outputs, layer scale 1.0, the maps (not pooled vectors)
CONVNEXT_B = dict(
    arch='base',
    out_indices=[0, 1, 2, 3],
    layer_scale_init_value=1.0,
    gap_before_final_norm=False)
CONVNEXT_B_CHANNELS = [128, 256, 512, 1024]
# the ImageNet-1k ConvNeXt-B mmseg's UperNet ConvNeXt configs start from
# (an mmpretrain classification checkpoint: 'backbone.*' keys and a head)
CONVNEXT_B_IN1K = (
    'https://download.openmmlab.com/mmclassification/v0/convnext/downstream/'
    'convnext-base_3rdparty_32xb128-noema_in1k_20220301-2a0ee547.pth')

# the full-fine-tuning backbone of both ConvNeXt-B recipes (COCO, ADE20K);
# drop path 0.4 as mmseg's ConvNeXt-B UperNet
CONVNEXT_B_BACKBONE = dict(
    type='PretrainedConvNeXt',
    **CONVNEXT_B,
    drop_path_rate=0.4,
    init_cfg=dict(type='Pretrained', checkpoint=CONVNEXT_B_IN1K))

# 12 blocks (M = 7), 16..128 wide: the toy config's. No pretrained weights
# exist for it (init_cfg=None).
TINY_CONVNEXT = dict(
    arch=dict(depths=[2, 2, 6, 2], channels=[16, 32, 64, 128]),
    out_indices=[0, 1, 2, 3],
    layer_scale_init_value=1.0,
    gap_before_final_norm=False,
    drop_path_rate=0.0)
TINY_CONVNEXT_CHANNELS = [16, 32, 64, 128]
