"""Small mmpretrain ViTs and their checkpoints in the release layouts
(mmpretrain's, timm's, the official DINOv2 release's, mmseg's)."""

import torch

from helpers.vit_utils import randomise_all, rename_keys

# 12 blocks, 64 wide, patch 8, 64x64 images (M = 7 as for ViT-B), with
# DINOv2's layer scale
TINY_ARCH = dict(
    embed_dims=64, num_layers=12, num_heads=2, feedforward_channels=128)
TINY = dict(
    arch=TINY_ARCH,
    patch_size=8,
    img_size=64,
    out_indices=(2, 5, 8, 11),
    layer_scale_init_value=0.1)
# the block kinds of the supported archs: DINOv2 S/B/L (layer scale, MLP),
# DINOv2-g (layer scale, fused SwiGLU), DeiT / ViT (neither)
KINDS = {
    'dinov2': {},
    'dinov2-giant': dict(layer_cfgs=dict(ffn_type='swiglu_fused')),
    'deit': dict(layer_scale_init_value=0.),
}


def tiny(kind='dinov2', **kw):
    return dict(TINY, **KINDS[kind], **kw)


def plain_vit(kind='dinov2', frozen=True, **kw):
    """mmpretrain's own VisionTransformer (feature maps out), random nonzero
    weights, frozen like the trunk it is compared with."""
    from mmpretrain.models import VisionTransformer
    vit = VisionTransformer(out_type='featmap', **tiny(kind, **kw))
    randomise_all(vit)
    return vit.requires_grad_(not frozen)


# mmpretrain key -> the other layouts' (the inverse of the loader's rules)
_TO_TIMM = (
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^layers\.(\d+)\.ffn\.(w12|w3)\.', r'blocks.\1.mlp.\2.'),
    (r'^layers\.(\d+)\.attn\.gamma1\.weight$', r'blocks.\1.ls1.gamma'),
    (r'^layers\.(\d+)\.ffn\.gamma2\.weight$', r'blocks.\1.ls2.gamma'),
    (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^ln1\.', 'norm.'),
)
_TO_DEIT3 = ((r'\.ls([12])\.gamma$', r'.gamma_\1'), )
_TO_MMSEG = (
    (r'^layers\.(\d+)\.attn\.qkv\.(weight|bias)$',
     r'layers.\1.attn.attn.in_proj_\2'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'layers.\1.attn.attn.out_proj.'),
)


def to_dinov2_layout(state):
    """The official DINOv2 release: a bare state dict, ``blocks.N.*``,
    ``ls1.gamma``, and the pre-training ``mask_token``."""
    out = rename_keys(state, _TO_TIMM)
    out['mask_token'] = torch.randn(1, state['cls_token'].shape[-1])
    return out


def to_timm_layout(state, deit3=False):
    """A timm release (``{'model': ...}`` with a classifier head); DeiT III
    names layer scale ``gamma_1`` / ``gamma_2``."""
    out = rename_keys(state, _TO_TIMM)
    if deit3:
        out = rename_keys(out, _TO_DEIT3)
    out['head.weight'] = torch.zeros(10, state['cls_token'].shape[-1])
    return {'model': out}


def to_mmpretrain_layout(state):
    """An mmpretrain classifier: ``backbone.*`` beside its head."""
    out = {'backbone.' + k: v.clone() for k, v in state.items()}
    out['head.fc.weight'] = torch.zeros(10, 4)
    return {'state_dict': out, 'meta': dict(mmpretrain_version='1.2.0')}


def to_mmseg_layout(state):
    return {'state_dict': rename_keys(state, _TO_MMSEG)}
