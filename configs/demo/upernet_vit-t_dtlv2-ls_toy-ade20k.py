# The ADE20K DTLv2-LS ViT config (UperNet + MultiLevelNeck) with a small
# ViT (12 blocks, 64 wide, patch 8), on the toy data and schedule of the
# Swin demo (upernet_swin-t_dtlv2-ls_toy-ade20k.py): CPU-sized.
_base_ = './upernet_swin-t_dtlv2-ls_toy-ade20k.py'
from dtl_mm import vit_presets  # noqa: E402 isort:skip (see its docstring)

model = dict(
    backbone=dict(
        _delete_=True,
        type='DTLVisionTransformer',
        variant='dtlv2-ls',
        rank=16,
        **vit_presets.TINY_VIT,
        img_size=(128, 160),  # the toy images
        init_cfg=None),  # no pretrained tiny ViT exists
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[vit_presets.TINY_VIT_WIDTH] * 4,
        out_channels=vit_presets.TINY_VIT_WIDTH,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[vit_presets.TINY_VIT_WIDTH] * 4),
    auxiliary_head=dict(in_channels=vit_presets.TINY_VIT_WIDTH))
