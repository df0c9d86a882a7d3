"""Pretrained plain-ViT weights into mmseg's ``VisionTransformer``.

Three key layouts load, under any ``[module.][backbone.][vit.]`` prefix:

- ``mmseg``: mmseg's own (``layers.N.ln1``, ``attn.attn.in_proj_weight``,
  ``ffn.layers.0.0``, ``patch_embed.projection``, final norm ``ln1``); also
  a whole dtl_mm model (``backbone.vit.*``) or an mmseg segmentor.
- ``timm``: timm / DeiT / the ViT releases in PyTorch (``blocks.N.norm1``,
  ``attn.qkv``, ``mlp.fc1``, ``patch_embed.proj``, final ``norm``), as
  mmseg's ``vit2mmseg`` converts them.
- ``mmpretrain``: mmpretrain's (``layers.N.attn.qkv``, ``attn.proj``).

The position embedding is resized to the configured image size (bicubic by
default) with mmseg's ``VisionTransformer.resize_pos_embed``, as mmseg does
when it loads a checkpoint. Every other weight must be in the file with the
model's shape: a missing one or a wrong shape (another width, another patch
size) is a :class:`CheckpointLayoutError` naming the tensor and both shapes,
and so is a deeper file (blocks the model lacks), naming them.
Releases with weights mmseg's ViT has no place for (layer scale: DINOv2,
DeiT III; registers; a distillation token) are refused by name.
"""
import math
import re
from functools import partial
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from ..checkpoint.safe_load import load_checkpoint_file
from .weight_loading import (CheckpointLayoutError, block_range, check_depths,
                             extract_state_dict, file_depths, fill_trunk,
                             find_trunk, lean_trunk_record,
                             load_via_lean_record)

# (prefix, ViT key): the keys a ViT's weights have in any supported layout
_VIT_KEY = re.compile(
    r'^((?:module\.)?(?:backbone\.)?(?:vit\.)?)'
    r'((?:layers|blocks)\.\d+\..*|patch_embed\..*|cls_token|pos_embed|'
    r'pre_ln\..*|ln1\..*|norm\..*|mask_token|register_tokens|dist_token)$')
_BLOCK_KEY = re.compile(r'^(layers|blocks)\.\d+\.')
# a block in the model's keys (after renaming): its index
_LAYER = re.compile(r'^layers\.(\d+)\.')
# timm / mmpretrain names -> mmseg's (the first pattern that matches)
_TO_MMSEG = (
    (re.compile(r'^blocks\.(\d+)\.norm1\.'), r'layers.\1.ln1.'),
    (re.compile(r'^blocks\.(\d+)\.norm2\.'), r'layers.\1.ln2.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc1\.'), r'layers.\1.ffn.layers.0.0.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc2\.'), r'layers.\1.ffn.layers.1.'),
    (re.compile(r'^(?:blocks|layers)\.(\d+)\.attn\.qkv\.(weight|bias)$'),
     r'layers.\1.attn.attn.in_proj_\2'),
    (re.compile(r'^(?:blocks|layers)\.(\d+)\.attn\.proj\.'),
     r'layers.\1.attn.attn.out_proj.'),
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
    (re.compile(r'^norm\.'), 'ln1.'),
)
# in a release, but no part of a dense-prediction trunk
_IGNORED = ('mask_token', )
# weights mmseg's ViT has no place for: refused, not dropped
_UNSUPPORTED = (
    (re.compile(r'(^|\.)(ls[12]\.gamma|gamma_?[12](\.weight)?)$'),
     'layer scale (DINOv2, DeiT III): mmseg\'s ViT has none'),
    (re.compile(r'\.mlp\.w(12|3)\.'), 'a SwiGLU MLP (DINOv2 ViT-g)'),
    (re.compile(r'^register_tokens$'), 'register tokens (DINOv2 with '
     'registers)'),
    (re.compile(r'^dist_token$'),
     'a distillation token (a distilled DeiT; use the non-distilled '
     'release)'),
)


def is_vit_block_key(key: str) -> bool:
    found = _VIT_KEY.match(key)
    return bool(found) and bool(_BLOCK_KEY.match(found.group(2)))


def find_vit(state_dict: Dict, filename: str) -> Tuple[Dict, str, int]:
    """(ViT state dict in mmseg keys, layout, #ignored keys)."""
    _, sd = find_trunk(
        state_dict, filename, _VIT_KEY, lambda k: bool(_BLOCK_KEY.match(k)),
        'ViT', "'[module.][backbone.][vit.]layers.N.*' (mmseg, mmpretrain, "
        "dtl_mm) or 'blocks.N.*' (timm, DeiT, ViT releases)")
    for key in sd:
        for pattern, what in _UNSUPPORTED:
            if pattern.search(key):
                raise CheckpointLayoutError(
                    f'{filename}: holds `{key}`, {what}: not supported')
    ignored = len(state_dict) - len(sd)
    if any(k.startswith('blocks.') for k in sd):
        layout = 'timm'
    elif any('.attn.qkv.' in k for k in sd):
        layout = 'mmpretrain'
    else:
        return sd, 'mmseg', ignored
    converted = {}
    for key, value in sd.items():
        if key in _IGNORED:
            ignored += 1
            continue
        for pattern, repl in _TO_MMSEG:
            new, n = pattern.subn(repl, key)
            if n:
                key = new
                break
        converted[key] = value
    return converted, layout, ignored


def check_vit_depth(vit: nn.Module, sd: Dict, filename: str, layout: str):
    """Refuses a file (``sd`` in the model's ``layers.N.`` keys) with more
    blocks than ``vit``, naming them and both depths."""

    def block_of(key):
        found = _LAYER.match(key)
        return (0, int(found.group(1))) if found else None

    check_depths(
        file_depths(sd, block_of), (len(vit.layers), ), filename, layout,
        'ViT', lambda _, first, last: f'layers.{block_range(first, last)}',
        lambda depths: f'num_layers {depths[0]}')


PATCH_KEY = 'patch_embed.projection.weight'


def check_patch_size(vit: nn.Module, sd: Dict, filename: str) -> None:
    """A file of another patch size is refused by that name, before its
    position embedding (another grid of tokens) is looked at."""
    mine = dict(vit.named_parameters()).get(PATCH_KEY)
    theirs = sd.get(PATCH_KEY)
    if mine is None or theirs is None or theirs.dim() != 4:
        return
    if tuple(theirs.shape[-2:]) != tuple(mine.shape[-2:]):
        raise CheckpointLayoutError(
            f'{filename}: a ViT of patch size '
            f'{"x".join(map(str, theirs.shape[-2:]))}, this config\'s has '
            f'{"x".join(map(str, mine.shape[-2:]))} ({PATCH_KEY}: checkpoint '
            f'{tuple(theirs.shape)} vs model {tuple(mine.shape)}): set '
            f'patch_size to the file\'s, or use a file of this patch size')


def fit_pos_embed(vit: nn.Module, pos_embed: torch.Tensor,
                  filename: str) -> torch.Tensor:
    """The file's position embedding on the model's patch grid
    (``img_size // patch_size``), resized as mmseg resizes it on load
    (``interpolate_mode``, bicubic by default); the class token's entry is
    kept."""
    want = vit.pos_embed.shape
    if pos_embed.dim() != 3 or pos_embed.shape[2] != want[2]:
        raise CheckpointLayoutError(
            f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} vs '
            f'model {tuple(want)} (another ViT width?)')
    if pos_embed.shape == want:
        return pos_embed
    side = math.isqrt(pos_embed.shape[1] - 1)
    if side * side != pos_embed.shape[1] - 1:
        raise CheckpointLayoutError(
            f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} vs '
            f'model {tuple(want)}: {pos_embed.shape[1]} tokens are not a '
            f'class token plus a square patch grid')
    grid = (vit.img_size[0] // vit.patch_size,
            vit.img_size[1] // vit.patch_size)
    print_log(
        f'{filename}: resizing pos_embed from a {side}x{side} to a '
        f'{grid[0]}x{grid[1]} patch grid ({vit.interpolate_mode})',
        logger='current')
    return vit.resize_pos_embed(pos_embed, grid, (side, side),
                                vit.interpolate_mode)


def load_vit_weights(vit: nn.Module,
                     filename: str,
                     logger='current',
                     keys: Optional[Iterable[str]] = None,
                     find: Callable = find_vit,
                     fit_pos: Callable = fit_pos_embed) -> Dict:
    """Fill every parameter of mmseg's ``VisionTransformer`` ``vit``
    (of ``keys``, default: all of its state) from ``filename`` or raise.

    ``find(state_dict, filename)`` and ``fit_pos(vit, pos_embed, filename)``
    put a file's ViT into the model's keys and patch grid (another
    library's ViT passes its own).

    Returns a report dict: layout, filled, ignored (count of other keys in
    the file), sha256 of the result.
    """
    ckpt = load_checkpoint_file(filename)
    state = extract_state_dict(ckpt, filename)
    record = lean_trunk_record(state, is_vit_block_key)
    if record is not None:
        load = partial(load_vit_weights, find=find, fit_pos=fit_pos)
        return load_via_lean_record(load, vit, filename, record, logger, keys)
    sd, layout, ignored = find(state, filename)
    check_vit_depth(vit, sd, filename, layout)
    check_patch_size(vit, sd, filename)
    if 'pos_embed' in sd:
        sd['pos_embed'] = fit_pos(vit, sd['pos_embed'], filename)

    return fill_trunk(
        vit,
        sd,
        filename,
        layout,
        ignored,
        logger,
        keys,
        name='ViT',
        shape_hint='another ViT size or patch size?')
