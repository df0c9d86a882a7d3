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
    """Tensors autograd saves for backward while each ViT block runs."""
    return saved_per_module(model.vit.layers, run)


def saved_per_module(modules, run):
    """({i: tensors autograd saved while modules[i - 1] ran}, run()): what
    each module (a trunk's blocks, numbered from 1) keeps for backward."""
    current, saved = {'block': None}, {}
    for i, module in enumerate(modules, start=1):
        module.register_forward_pre_hook(
            lambda m, a, i=i: current.__setitem__('block', i))
        module.register_forward_hook(
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


def check_side_network_isolated(model, x):
    """One backward through a DTL ViT with a randomised side network: no
    tensor saved in blocks 1..M, some in every later block, no gradient in
    the frozen ViT, and a nonzero one on every side-network parameter, the
    only ones that train."""
    saved, outs = saved_per_block(model, lambda: model(x))
    sum(o.square().mean() for o in outs).backward()
    first_g = model.layout.first_g
    assert not [i for i in saved if i <= first_g]
    assert all(saved.get(i, 0) > 0 for i in range(first_g + 1, 13))
    for name, p in model.vit.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    csn = list(model.csn.named_parameters())
    assert csn and len(csn) == len(
        [p for p in model.parameters() if p.requires_grad])
    for name, p in csn:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def check_every_csn_parameter_in_graph(model):
    """From the zero initialisation, as DDP's first step sees it (no
    find_unused_parameters): every side-network parameter gets a
    gradient."""
    model.train()
    sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64))) \
        .backward()
    for name, p in model.csn.named_parameters():
        assert p.grad is not None, name


def check_lean_round_trip(model, path, build, wrong_path):
    """``model`` was loaded from the release file ``path``;
    ``build(checkpoint)`` makes a new model of its config from another
    file (None: none); ``wrong_path`` holds other trunk weights.

    With its trainable weights randomised, ``model``'s state dict leaves
    the trunk out and records ``path`` and the trunk's fingerprint; a new
    model from the same file loads it into the same state and outputs; one
    from other weights or from no file refuses it. Returns the new model.
    """
    from dtl_mm.checkpoint.errors import CheckpointLayoutError
    from dtl_mm.checkpoint.lean_checkpoint import (decode_trunk_record,
                                                   trunk_fingerprint)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.normal_()
    state = model.state_dict()
    assert not any(
        k.startswith('vit.') and k[4:] in model.trunk_keys for k in state)
    assert set(trainable) <= set(state)
    record = decode_trunk_record(state['_extra_state'])
    assert record == dict(
        source=path, sha256=trunk_fingerprint(model.trunk_state()))

    other = build(path)
    other.load_state_dict(state)
    for (n, a), (_, b) in zip(
            model.state_dict(keep_vars=True).items(),
            other.state_dict(keep_vars=True).items()):
        assert torch.equal(a, b), n
    x = torch.randn(1, 3, 64, 64)
    model.eval(), other.eval()
    assert all(torch.equal(a, b) for a, b in zip(model(x), other(x)))

    import pytest  # only when a test calls this
    with pytest.raises(CheckpointLayoutError, match='different weights'):
        build(wrong_path).load_state_dict(state)
    # no pretrained file at all: refused, not a random trunk
    with pytest.raises(CheckpointLayoutError, match='no pretrained file'):
        build(None).load_state_dict(state)
    return other
