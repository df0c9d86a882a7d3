_base_ = './retinanet_swin-l_dtlv2_fpn_voc0712.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

model = dict(
    backbone=swin_presets.SWIN_B,
    neck=dict(in_channels=swin_presets.SWIN_B_CHANNELS[1:]))
