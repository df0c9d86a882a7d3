_base_ = './upernet_swin-l_adapter_160k_ade20k-512x512.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

model = dict(
    backbone=swin_presets.SWIN_B,
    decode_head=dict(in_channels=swin_presets.SWIN_B_CHANNELS),
    auxiliary_head=dict(in_channels=512))
