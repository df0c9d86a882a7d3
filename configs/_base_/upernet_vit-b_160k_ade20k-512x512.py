# UperNet + mmpretrain's ViT-B/16 on ADE20K: the recipe of the DeiT-B
# configs (mmseg's ViT UperNet: MultiLevelNeck, 512x512 crops, 160k
# iterations, AdamW 6e-5), with the backbone of configs/vit_mmpretrain/.
# The `full` variant; the variant configs change the backbone.
_base_ = './upernet_deit-b_160k_ade20k-512x512.py'
from dtl_mm.models import mmpretrain_vit_presets as vp  # noqa: E402 isort:skip

model = dict(
    backbone=dict(
        vp.VIT_B,
        _delete_=True,
        img_size=(512, 512),  # the position embedding: a 32 x 32 grid
        with_cp=False))
