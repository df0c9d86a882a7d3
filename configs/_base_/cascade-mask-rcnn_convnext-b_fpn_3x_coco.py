# Cascade Mask R-CNN + ConvNeXt-B on COCO: the Swin-B recipe of
# cascade-mask-rcnn_swin-b_fpn_3x_coco.py (4conv1fc heads with GIoU,
# multi-scale crop training, AdamW 1e-4 / 0.05, 36 epochs), with the ConvNeXt
# backbone as mmdet's ConvNeXt configs build it (mmpretrain's ConvNeXt,
# layer scale 1.0, dense outputs) and the ImageNet-1k ConvNeXt-B of mmseg's
# UperNet ConvNeXt configs. mmdet's recipe also decays the learning rate
# layer-wise; that matters for full fine-tuning only and is left out. This
# is the `full` variant; configs/convnext/ change the backbone.
_base_ = './cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
from dtl_mm.models import convnext_presets  # noqa: E402 isort:skip

model = dict(
    backbone=dict(_delete_=True, **convnext_presets.CONVNEXT_B_BACKBONE),
    neck=dict(in_channels=convnext_presets.CONVNEXT_B_CHANNELS))
