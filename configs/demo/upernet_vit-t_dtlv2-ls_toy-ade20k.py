# The ADE20K DTLv2-LS ViT config (UperNet + MultiLevelNeck) with a small
# ViT (12 blocks, 64 wide, patch 8), on the toy data and schedule of the
# Swin demo (upernet_swin-t_dtlv2-ls_toy-ade20k.py): CPU-sized.
_base_ = './upernet_swin-t_dtlv2-ls_toy-ade20k.py'
from dtl_mm.models import vit_presets  # noqa: E402 isort:skip

model = dict(
    # no pretrained tiny ViT exists (init_cfg=None)
    backbone=dict(vit_presets.TINY_DTL_VIT, _delete_=True),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[vit_presets.TINY_VIT_WIDTH] * 4,
        out_channels=vit_presets.TINY_VIT_WIDTH,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[vit_presets.TINY_VIT_WIDTH] * 4),
    auxiliary_head=dict(in_channels=vit_presets.TINY_VIT_WIDTH))
