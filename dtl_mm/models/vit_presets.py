"""The plain ViTs dtl_mm's ViT configs use (mmseg ``VisionTransformer``
arguments): DeiT-B/16 from its official release, and the small ViT of the
demo configs and the tests.

As with ``swin_presets``, the configs import this module below their
``_base_`` line, so a dumped config holds only the values it used. Point a
config at a local copy of a release with
``--cfg-options model.backbone.init_cfg.checkpoint=/path/to/FILE.pth``.
"""

# the output blocks (from 0) of a 12-block ViT for a 4-level neck, as in
# mmseg's ViT UperNet configs
OUT_INDICES_12 = (2, 5, 8, 11)

# DeiT-B/16 (ImageNet-1K, timm layout), as mmseg's vit_deit-b16 UperNet
# recipe builds it
DEIT_B = dict(
    patch_size=16,
    embed_dims=768,
    num_layers=12,
    num_heads=12,
    mlp_ratio=4,
    qkv_bias=True,
    with_cls_token=True,
    norm_cfg=dict(type='LN', eps=1e-6),
    interpolate_mode='bicubic',
    out_indices=OUT_INDICES_12,
    drop_path_rate=0.1,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/deit/'
        'deit_base_patch16_224-b5f2ef4d.pth'))
DEIT_B_WIDTH = DEIT_B['embed_dims']

# 12 blocks like ViT-B (so M = 7, as for the paper's ViT-B/16), 64 wide,
# patch 8. No pretrained weights exist for it (configs set init_cfg=None).
TINY_VIT = dict(
    embed_dims=64,
    num_layers=12,
    num_heads=2,
    mlp_ratio=2,
    patch_size=8,
    out_indices=OUT_INDICES_12,
    final_norm=False,
    drop_path_rate=0.0)
TINY_VIT_WIDTH = TINY_VIT['embed_dims']
# the DTLv2-LS backbone of the ViT demo configs, on the toy images
TINY_DTL_VIT = dict(
    type='DTLVisionTransformer',
    variant='dtlv2-ls',
    rank=16,
    **TINY_VIT,
    img_size=(128, 160),
    init_cfg=None)

# mmseg's ViT recipe exempts these from weight decay (substring matches of
# parameter names; no CSN parameter name contains them)
DECAY_EXEMPTIONS = {
    'pos_embed': dict(decay_mult=0.),
    'cls_token': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.),
}
