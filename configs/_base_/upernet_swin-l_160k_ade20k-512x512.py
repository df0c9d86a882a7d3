# UperNet + Swin-L on ADE20K: 512x512 crops, 160k iterations, AdamW 6e-5 /
# 0.01, 1500 warm-up iterations then poly, 2 images x 8 GPUs, auxiliary FCN
# head (mmseg's own Swin-L recipe). The `full` variant; configs/ade20k/
# change the backbone.
_base_ = [
    'mmseg::swin/swin-large-patch4-window7-in22k-pre_upernet_8xb2-160k_'
    'ade20k-512x512.py',
    './dtl_common.py',
]
# checkpoints appear whole or not at all: a run killed mid-save leaves no
# truncated file under the final name (dtl_mm's atomic_local file backend)
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedSwinTransformer',
        **swin_presets.SWIN_L,
        pretrain_img_size=224,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.3,
        patch_norm=True,
        use_abs_pos_embed=False,
        out_indices=(0, 1, 2, 3),
        with_cp=False))
optim_wrapper = dict(
    constructor='DTLOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys=swin_presets.DECAY_EXEMPTIONS))
