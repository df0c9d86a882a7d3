# UperNet + ConvNeXt-B on ADE20K: the Swin recipe of
# upernet_swin-l_160k_ade20k-512x512.py (512x512 crops, 160k iterations,
# poly schedule, auxiliary FCN head) with mmseg's ConvNeXt-B UperNet settings
# (mmseg::convnext/convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py:
# the backbone, drop path 0.4, AdamW 1e-4 / 0.05). mmseg's recipe also
# decays the learning rate stage-wise; that matters for full fine-tuning
# only and is left out. This is the `full` variant; configs/convnext/ change
# the backbone.
_base_ = './upernet_swin-l_160k_ade20k-512x512.py'
from dtl_mm.models import convnext_presets  # noqa: E402 isort:skip

model = dict(
    backbone=dict(_delete_=True, **convnext_presets.CONVNEXT_B_BACKBONE),
    decode_head=dict(in_channels=convnext_presets.CONVNEXT_B_CHANNELS),
    auxiliary_head=dict(in_channels=convnext_presets.CONVNEXT_B_CHANNELS[2]))
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.05))
