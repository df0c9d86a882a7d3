"""Pretrained plain-ViT weights into mmpretrain's ``VisionTransformer``.

The layouts that load, under any ``[module.][backbone.][vit.]`` prefix:

- ``mmpretrain``: mmpretrain's own (``layers.N.ln1``, ``attn.qkv``,
  ``attn.gamma1.weight``, ``ffn.layers.0.0`` or ``ffn.w12``, final norm
  ``ln1``); also a whole dtl_mm model or an mmpretrain classifier;
- ``timm``: timm / DeiT / DeiT III / ViT releases (``blocks.N.norm1``,
  ``mlp.fc1``, ``gamma_1``, ``patch_embed.proj``, final ``norm``);
- ``dinov2``: the official DINOv2 release (timm's names plus
  ``blocks.N.ls1.gamma``, the giant's ``mlp.w12`` / ``mlp.w3``, and
  ``mask_token``, a pre-training-only token that is ignored);
- ``mmseg``: mmseg's ViT (``attn.attn.in_proj_weight``, ``pre_ln``).

Renamed as mmpretrain's own converters rename them (``deit3_to_mmpretrain``
and its DINOv2 configs). The position embedding is resized to the model's
patch grid with mmpretrain's ``resize_pos_embed`` (the model's
``interpolate_mode``), as mmpretrain does on load; a class-token entry is
dropped for ``with_cls_token=False``. Everything else must fit exactly: a
missing weight or a wrong shape (another width, another patch size) is a
:class:`CheckpointLayoutError` naming the tensor and both shapes, and so is
a block weight the model has no place for (layer scale or a SwiGLU MLP in
the file but not in the config) or a block beyond the model's depth,
rather than being dropped. Register tokens (DINOv2 with registers) and
distillation tokens are refused by name: mmpretrain 1.2.0's ViT has
neither.
"""
import math
import re
from functools import partial
from typing import Dict, Iterable, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .vit_weights import _BLOCK_KEY, check_vit_depth, load_vit_weights
from .weight_loading import CheckpointLayoutError, find_trunk

# (prefix, ViT key) in any supported layout (mmpretrain's pre-norm too)
_VIT_KEY = re.compile(
    r'^((?:module\.)?(?:backbone\.)?(?:vit\.)?)'
    r'((?:layers|blocks)\.\d+\..*|patch_embed\..*|cls_token|pos_embed|'
    r'pre_ln\..*|pre_norm\..*|ln1\..*|norm\..*|mask_token|register_tokens|'
    r'dist_token)$')
# timm / DINOv2 / mmseg names -> mmpretrain's; a block key is renamed by
# the first rule that matches after ``blocks.N.`` became ``layers.N.``
_BLOCK_RULES = (
    (r'\.norm1\.', '.ln1.'),
    (r'\.norm2\.', '.ln2.'),
    (r'\.mlp\.fc1\.', '.ffn.layers.0.0.'),
    (r'\.mlp\.fc2\.', '.ffn.layers.1.'),
    (r'\.mlp\.(w12|w3)\.', r'.ffn.\1.'),
    (r'\.ls1\.gamma$', '.attn.gamma1.weight'),
    (r'\.ls2\.gamma$', '.ffn.gamma2.weight'),
    (r'\.gamma_1$', '.attn.gamma1.weight'),
    (r'\.gamma_2$', '.ffn.gamma2.weight'),
    (r'\.attn\.attn\.in_proj_(weight|bias)$', r'.attn.qkv.\1'),
    (r'\.attn\.attn\.out_proj\.', '.attn.proj.'),
)
_OTHER_RULES = (
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^norm\.', 'ln1.'),
    (r'^pre_ln\.', 'pre_norm.'),
)
_BLOCK_RULES = tuple((re.compile(p), r) for p, r in _BLOCK_RULES)
_OTHER_RULES = tuple((re.compile(p), r) for p, r in _OTHER_RULES)
# in a release, but no part of a dense-prediction trunk
_IGNORED = ('mask_token', )
_UNSUPPORTED = {
    'register_tokens':
    'register tokens (DINOv2 with registers): '
    'mmpretrain 1.2.0\'s VisionTransformer has none; use the release '
    'without registers',
    'dist_token':
    'a distillation token (a distilled DeiT): use the '
    'non-distilled release',
}
_WHAT = (
    (re.compile(r'gamma[12]\.'), 'layer scale (set a dinov2-* arch or '
     'layer_scale_init_value)'),
    (re.compile(r'\.ffn\.w(12|3)\.'), 'a SwiGLU MLP (DINOv2 giant: '
     "layer_cfgs=dict(ffn_type='swiglu_fused'))"),
    (re.compile(r'\.ffn\.layers\.'), 'an MLP of two Linear layers'),
)


def to_mmpretrain_key(key: str) -> str:
    """A ViT key of any supported layout in mmpretrain's names."""
    block = re.match(r'^(?:blocks|layers)\.(\d+)\.', key)
    if block:
        key = f'layers.{block.group(1)}.' + key[block.end():]
        rules = _BLOCK_RULES
    else:
        rules = _OTHER_RULES
    for pattern, repl in rules:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    return key


def find_mmpretrain_vit(vit: nn.Module, state_dict: Dict,
                        filename: str) -> Tuple[Dict, str, int]:
    """(the file's ViT in mmpretrain keys, layout, #ignored keys)."""
    _, sd = find_trunk(
        state_dict, filename, _VIT_KEY, lambda k: bool(_BLOCK_KEY.match(k)),
        'ViT', "'[module.][backbone.][vit.]layers.N.*' (mmpretrain, mmseg, "
        "dtl_mm) or 'blocks.N.*' (timm, DeiT, DINOv2 releases)")
    for key in sd:
        if key in _UNSUPPORTED:
            raise CheckpointLayoutError(
                f'{filename}: holds `{key}`, {_UNSUPPORTED[key]}')
    if any(k.startswith('blocks.') for k in sd):
        dinov2 = 'mask_token' in sd  # DINOv2's pre-training token
        layout = 'dinov2' if dinov2 else 'timm'
    elif any('.attn.attn.' in k for k in sd):
        layout = 'mmseg'
    else:
        layout = 'mmpretrain'
    ignored = len(state_dict) - len(sd)
    converted = {}
    for key, value in sd.items():
        if key in _IGNORED:
            ignored += 1
            continue
        converted[to_mmpretrain_key(key)] = value
    # blocks beyond the model's depth first: they are named as blocks, not
    # as weights of another block architecture
    check_vit_depth(vit, converted, filename, layout)
    # a block weight the model has no place for means another architecture:
    # dropping it would load a different function than the file's
    model_keys = set(vit.state_dict())
    extra = sorted(
        k for k in converted if _BLOCK_KEY.match(k) and k not in model_keys)
    if extra:
        what = next((w for p, w in _WHAT if p.search(extra[0])),
                    'another block architecture')
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): {len(extra)} block weight(s) of '
            f'the file have no place in this ViT, e.g. `{extra[0]}`: the '
            f'file has {what}; the config builds a different block')
    return converted, layout, ignored


def fit_mmpretrain_pos_embed(vit: nn.Module, pos_embed: torch.Tensor,
                             filename: str) -> torch.Tensor:
    """The file's position embedding on the model's patch grid
    (``vit.patch_resolution``), resized with mmpretrain's
    ``resize_pos_embed``; extra-token entries are kept (a class-token entry
    is dropped for ``with_cls_token=False``, as mmpretrain does)."""
    from mmpretrain.models.utils import resize_pos_embed
    want = vit.pos_embed.shape
    extra = vit.num_extra_tokens
    if pos_embed.dim() != 3 or pos_embed.shape[2] != want[2]:
        raise CheckpointLayoutError(
            f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} vs '
            f'model {tuple(want)} (another ViT width?)')
    if extra == 0 and math.isqrt(pos_embed.shape[1] - 1)**2 == \
            pos_embed.shape[1] - 1:
        pos_embed = pos_embed[:, 1:]  # the class token's entry
    if pos_embed.shape == want:
        return pos_embed
    side = math.isqrt(pos_embed.shape[1] - extra)
    if side * side != pos_embed.shape[1] - extra:
        raise CheckpointLayoutError(
            f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} vs '
            f'model {tuple(want)}: {pos_embed.shape[1]} tokens are not '
            f'{extra} extra token(s) plus a square patch grid')
    grid = tuple(vit.patch_resolution)
    print_log(
        f'{filename}: resizing pos_embed from a {side}x{side} to a '
        f'{grid[0]}x{grid[1]} patch grid ({vit.interpolate_mode})',
        logger='current')
    return resize_pos_embed(pos_embed, (side, side), grid,
                            vit.interpolate_mode, extra)


def load_mmpretrain_vit_weights(vit: nn.Module,
                                filename: str,
                                logger='current',
                                keys: Optional[Iterable[str]] = None) -> Dict:
    """Fill every parameter of mmpretrain's ``VisionTransformer`` ``vit``
    (of ``keys``, default: all of its state) from ``filename`` or raise;
    the report of :func:`load_vit_weights`."""
    return load_vit_weights(
        vit,
        filename,
        logger,
        keys,
        find=partial(find_mmpretrain_vit, vit),
        fit_pos=fit_mmpretrain_pos_embed)
