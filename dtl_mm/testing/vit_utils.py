"""Small plain ViTs and their checkpoints in the release layouts."""
import re

import torch

from dtl_mm.models import vit_presets

# 12 blocks, 64 wide, patch 8, 64x64 images: M = 7 as for ViT-B
TINY = dict(vit_presets.TINY_VIT, img_size=64)


def plain_vit(frozen=True, **kw):
    """mmseg's own VisionTransformer, with random (nonzero) weights; frozen
    (no weight requires a gradient) like the trunk it is compared with:
    torch picks attention kernels by requires_grad, which changes the last
    bits of the result."""
    from mmseg.models.backbones import VisionTransformer
    vit = VisionTransformer(**dict(TINY, **kw))
    randomise_all(vit)
    return vit.requires_grad_(not frozen)


def randomise_all(module, std=0.05):
    """Nonzero random values for every parameter (the class token and the
    position embedding start at zero, which would hide mistakes)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)


def saved_per_block(model, run):
    """Tensors autograd saves for backward while each block runs."""
    current, saved = {'block': None}, {}
    for i, layer in enumerate(model.vit.layers, start=1):
        layer.register_forward_pre_hook(
            lambda m, a, i=i: current.__setitem__('block', i))
        layer.register_forward_hook(
            lambda m, a, o: current.__setitem__('block', None))

    def pack(t):
        if current['block'] is not None:
            saved[current['block']] = saved.get(current['block'], 0) + 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = run()
    return saved, outs


# mmseg key -> timm's / mmpretrain's (the inverse of the loader's mapping)
_TO_TIMM = (
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^layers\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$',
     r'blocks.\1.attn.qkv.\2'),
    (r'^layers\.(\d+)\.attn\.attn\.out_proj\.', r'blocks.\1.attn.proj.'),
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^ln1\.', 'norm.'),
)
_TO_MMPRETRAIN = (
    (r'^layers\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$',
     r'layers.\1.attn.qkv.\2'),
    (r'^layers\.(\d+)\.attn\.attn\.out_proj\.', r'layers.\1.attn.proj.'),
)


def rename_keys(state, rules):
    """A copy of ``state`` with each key renamed by the first matching
    (pattern, replacement) of ``rules``."""
    out = {}
    for k, v in state.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, k)
            if n:
                k = new
                break
        out[k] = v.clone()
    return out


def to_timm_layout(mm_state):
    """A timm-style release: ``{'model': ...}`` with a classifier head."""
    out = rename_keys(mm_state, _TO_TIMM)
    width = mm_state['cls_token'].shape[-1]
    out['head.weight'] = torch.zeros(10, width)
    out['head.bias'] = torch.zeros(10)
    return {'model': out}


def to_mmpretrain_layout(mm_state):
    """An mmpretrain classifier: ``backbone.*`` beside its head."""
    out = {
        'backbone.' + k: v
        for k, v in rename_keys(mm_state, _TO_MMPRETRAIN).items()
    }
    out['head.layers.head.weight'] = torch.zeros(10, 4)
    return {'state_dict': out}
