# Cascade Mask R-CNN + DeiT-B/16 on COCO: the Swin-B detection recipe of
# cascade-mask-rcnn_swin-b_fpn_3x_coco.py with the plain ViT's last block
# as the only backbone output and a simple feature pyramid over it (as
# ViTDet): mmseg's MultiLevelNeck rescales the 1/16 map by 4, 2, 1, 1/2 and
# 1/4 into the five levels (strides 4..64) the RPN and RoI heads expect.
# The `full` variant; configs/vit/ change the backbone.
_base_ = './cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
from dtl_mm.models import vit_presets  # noqa: E402 isort:skip

# MultiLevelNeck is mmseg's (registered by importing mmseg.models)
custom_imports = dict(imports=['dtl_mm', 'mmseg.models'])
model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedVisionTransformer',
        **dict(vit_presets.DEIT_B, out_indices=(11, )),
        img_size=(1024, 1024),
        with_cp=False),
    neck=dict(
        _delete_=True,
        type='mmseg.MultiLevelNeck',
        in_channels=[vit_presets.DEIT_B_WIDTH],
        out_channels=256,
        scales=[4, 2, 1, 0.5, 0.25]))
# the ViT's exemptions from weight decay instead of the Swin's
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys=dict(_delete_=True, **vit_presets.DECAY_EXEMPTIONS)))
