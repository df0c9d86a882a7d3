"""The mmpretrain ViTs of dtl_mm's ``configs/vit_mmpretrain/`` (mmpretrain
``VisionTransformer`` arguments): ViT-B/16 and DINOv2-L/14 from their
releases, and the small ViT of the demo configs and the tests.

As with ``vit_presets``, the configs import this module below their
``_base_`` line, so a dumped config holds only the values it used. Point a
config at a local copy of a release with
``--cfg-options model.backbone.init_cfg.checkpoint=/path/to/FILE.pth``.
"""

# the output blocks (from 0) for a 4-level neck: every quarter of the depth
OUT_INDICES_12 = (2, 5, 8, 11)
OUT_INDICES_24 = (5, 11, 17, 23)

# ViT-B/16 pre-trained on ImageNet-21k, fine-tuned on ImageNet-1k (timm's
# layout), the release mmseg's ViT-B UperNet recipe starts from
VIT_B = dict(
    type='PretrainedMMPretrainViT',
    arch='base',
    patch_size=16,
    out_indices=OUT_INDICES_12,
    drop_path_rate=0.1,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/rwightman/pytorch-image-models/'
        'releases/download/v0.1-vitjx/jx_vit_base_p16_224-80ecf9dd.pth'))
VIT_B_WIDTH = 768

# DINOv2 ViT-L/14 (the official release's layout; patch 14, layer scale)
DINOV2_L = dict(
    type='PretrainedMMPretrainViT',
    arch='dinov2-large',
    out_indices=OUT_INDICES_24,
    drop_path_rate=0.2,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/'
        'dinov2_vitl14_pretrain.pth'))
DINOV2_L_WIDTH = 1024

# 12 blocks like ViT-B (M = 7), 64 wide, patch 8, with DINOv2's layer
# scale. No pretrained weights exist for it (configs set init_cfg=None).
TINY_VIT = dict(
    arch=dict(
        embed_dims=64, num_layers=12, num_heads=2, feedforward_channels=128),
    patch_size=8,
    layer_scale_init_value=1e-5,
    out_indices=OUT_INDICES_12,
    final_norm=False,
    img_size=(128, 160),
    init_cfg=None)
TINY_VIT_WIDTH = 64
