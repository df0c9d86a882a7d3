"""Small Swin models and synthetic checkpoints for the tests."""
import contextlib
import re

import torch
from mmdet.models.backbones.swin import SwinTransformer

from dtl_mm.models import swin_presets

# 12 blocks: first G block M = 7 (the middle), stage 3 = blocks 5..10
TINY = swin_presets.TINY_SWIN
# no weights: the tests build them for their shapes and parameter counts
SWIN_B = dict(swin_presets.SWIN_B, init_cfg=None)
SWIN_L = dict(swin_presets.SWIN_L, init_cfg=None)


def plain_swin(**kw):
    return SwinTransformer(**dict(TINY, **kw))


@contextlib.contextmanager
def skip_random_init():
    """Models built inside keep torch.empty's contents instead of drawing
    random initial values. For tests that look only at a model's structure
    (which parts exist, their sizes, what trains): drawing ~200 M random
    numbers is most of the time of building a Swin-B/L detector."""
    names = ('uniform_', 'normal_')
    own = {
        n: torch.Tensor.__dict__[n]
        for n in names if n in torch.Tensor.__dict__
    }
    for n in names:
        setattr(torch.Tensor, n, lambda self, *args, **kwargs: self)
    try:
        yield
    finally:
        for n in names:
            if n in own:
                setattr(torch.Tensor, n, own[n])
            else:
                delattr(torch.Tensor, n)


def randomise(module, std=0.05):
    """Random values for every trainable parameter (breaks zero init)."""
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.normal_(0, std)


def to_microsoft_layout(mm_state):
    """Inverse of mmdet's swin_converter: mmdet Swin keys -> the official
    Microsoft release layout (``layers.*``, unfold order of PatchMerging)."""
    out = {}
    for k, v in mm_state.items():
        if k.startswith('norm') or 'relative_position_index' in k:
            continue  # output norms are not in a classification checkpoint
        nk = k.replace('stages.', 'layers.', 1)
        nk = nk.replace('attn.w_msa.', 'attn.')
        nk = nk.replace('ffn.layers.0.0.', 'mlp.fc1.')
        nk = nk.replace('ffn.layers.1.', 'mlp.fc2.')
        nk = nk.replace('patch_embed.projection', 'patch_embed.proj')
        if 'downsample.reduction' in k:
            o, i = v.shape
            v = v.reshape(o, i // 4, 4).transpose(1, 2)[:, [0, 2, 1, 3]]
            v = v.reshape(o, i)
        elif 'downsample.norm' in k:
            i = v.shape[0]
            v = v.reshape(i // 4, 4).transpose(0, 1)[[0, 2, 1, 3]].reshape(i)
        out[nk] = v.clone()
    # as in the release, each shifted block keeps its attention mask
    for k in list(out):
        block = re.match(r'^(layers\.\d+\.blocks\.(\d+)\.)norm1\.weight$', k)
        if block and int(block.group(2)) % 2:
            out[block.group(1) + 'attn_mask'] = torch.zeros(4, 49, 49)
    # a classifier release also carries these; they must be ignored
    out['norm.weight'] = torch.ones(8)
    out['head.weight'] = torch.zeros(10, 8)
    return {'model': out}
