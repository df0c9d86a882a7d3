# The ADE20K DTLv2-LS ConvNeXt config with a small ConvNeXt (12 blocks,
# 16..128 wide), on the toy data and schedule of the Swin demo
# (upernet_swin-t_dtlv2-ls_toy-ade20k.py): CPU-sized.
_base_ = '../demo/upernet_swin-t_dtlv2-ls_toy-ade20k.py'
from dtl_mm.models import convnext_presets  # noqa: E402 isort:skip

model = dict(
    # no pretrained tiny ConvNeXt exists (init_cfg=None)
    backbone=dict(
        _delete_=True,
        type='DTLConvNeXt',
        variant='dtlv2-ls',
        rank=16,
        **convnext_presets.TINY_CONVNEXT,
        init_cfg=None),
    decode_head=dict(in_channels=convnext_presets.TINY_CONVNEXT_CHANNELS),
    auxiliary_head=dict(
        in_channels=convnext_presets.TINY_CONVNEXT_CHANNELS[2]))
