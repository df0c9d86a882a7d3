_base_ = './cascade-mask-rcnn_swin-b_adapter_fpn_3x_coco.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

model = dict(
    backbone=swin_presets.SWIN_L,
    neck=dict(in_channels=swin_presets.SWIN_L_CHANNELS))
