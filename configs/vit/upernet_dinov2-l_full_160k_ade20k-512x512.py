_base_ = './upernet_deit-b_full_160k_ade20k-512x512.py'
from dtl_mm import vit_presets  # noqa: E402 isort:skip (see its docstring)

model = dict(
    backbone=vit_presets.DINOV2_L,
    neck=dict(
        in_channels=vit_presets.DINOV2_L_CHANNELS,
        out_channels=vit_presets.DINOV2_L_CHANNELS[0]),
    decode_head=dict(in_channels=vit_presets.DINOV2_L_CHANNELS),
    auxiliary_head=dict(in_channels=vit_presets.DINOV2_L_CHANNELS[0]))
