# UperNet + DINOv2 ViT-L/14 on ADE20K: the ViT-B recipe with the wider
# backbone (outputs of blocks 6, 12, 18, 24, 1024 wide; 512 pads to 518 =
# a 37 x 37 patch grid, as DINOv2 was pre-trained).
_base_ = './upernet_vit-b_160k_ade20k-512x512.py'
from dtl_mm.models import mmpretrain_vit_presets as vp  # noqa: E402 isort:skip

model = dict(
    backbone=dict(
        vp.DINOV2_L, _delete_=True, img_size=(512, 512), with_cp=False),
    neck=dict(
        in_channels=[vp.DINOV2_L_WIDTH] * 4, out_channels=vp.DINOV2_L_WIDTH),
    decode_head=dict(in_channels=[vp.DINOV2_L_WIDTH] * 4),
    auxiliary_head=dict(in_channels=vp.DINOV2_L_WIDTH))
