# UperNet + DeiT-B/16 on ADE20K: mmseg's own ViT recipe (MultiLevelNeck
# rescaling the outputs of blocks 3, 6, 9 and 12 to 1/4 ... 1/32, 512x512
# crops, 160k iterations, AdamW 6e-5 / 0.01, 1500 warm-up iterations then
# poly, 2 images x 8 GPUs, auxiliary FCN head). The `full` variant;
# configs/vit/ change the backbone.
_base_ = [
    'mmseg::vit/vit_deit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py',
    './dtl_common.py',
]
# checkpoints appear whole or not at all: a run killed mid-save leaves no
# truncated file under the final name (dtl_mm's atomic_local file backend)
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
from dtl_mm.models import vit_presets  # noqa: E402 isort:skip

model = dict(
    pretrained=None,  # the backbone's init_cfg names the file
    backbone=dict(
        type='PretrainedVisionTransformer',
        **vit_presets.DEIT_B,
        img_size=(512, 512),  # the position embedding: a 32 x 32 grid
        with_cp=False))
optim_wrapper = dict(constructor='DTLOptimWrapperConstructor')
