"""Pretrained Swin weights into mmdet's Swin, whatever layout they come in.

Two layouts exist in the wild:
- Microsoft's release (``model`` -> ``layers.*``, ``patch_embed.proj``,
  ``attn.``, ``mlp.fc1``): converted once with mmdet's ``swin_converter``;
- OpenMMLab-converted (``stages.*``, optionally under ``backbone.`` and, for
  checkpoints of our own wrapper, ``backbone.swin.``): loaded as they are.
  (mmdet's converter would silently mangle these, so we detect first.)

The load refuses to leave a frozen weight at its random initialisation.
"""
import hashlib
import os
import re
from collections import OrderedDict
from typing import Dict

import torch
from mmdet.models.backbones.swin import swin_converter
from mmengine.logging import print_log
from torch import nn

from ..checkpoint import load_checkpoint_file

# Output norms (norm0..norm3) belong to the dense-prediction wrapper, not to
# the ImageNet classifier: a classification checkpoint never has them. Left
# at LayerNorm's deterministic init (weight 1, bias 0) they are well defined.
_OUTPUT_NORM = re.compile(r'^norm\d+\.')
_PREFIXES = ('module.', 'backbone.', 'swin.')


class CheckpointLayoutError(ValueError):
    """The checkpoint is not a Swin of the configured architecture."""


def extract_state_dict(ckpt, filename: str) -> Dict[str, torch.Tensor]:
    if not isinstance(ckpt, dict):
        raise CheckpointLayoutError(
            f'{filename}: expected a dict checkpoint, got {type(ckpt)}')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def to_mmdet_swin_keys(state_dict: Dict, filename: str):
    """Returns (state dict in mmdet Swin keys, layout name)."""
    sd = dict(state_dict)
    if any(k.startswith('backbone.') for k in sd):
        # a whole detector/segmentor: keep only its backbone
        sd = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    for prefix in _PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    if any(k.startswith('stages.') for k in sd):
        return sd, 'openmmlab'
    if any(k.startswith('layers.') for k in sd):
        converted = swin_converter(sd)  # adds 'backbone.'
        return {k[len('backbone.'):]: v for k, v in converted.items()}, \
            'microsoft'
    sample = ', '.join(list(sd)[:5])
    raise CheckpointLayoutError(
        f'{filename}: not a Swin checkpoint: expected keys starting with '
        f"'layers.' (Microsoft release) or '[backbone.]stages.' (OpenMMLab), "
        f'found e.g. {sample}')


def load_swin_weights(swin: nn.Module, filename: str,
                      logger='current') -> Dict:
    """Fill every Swin parameter from ``filename`` or raise.

    Returns a report dict: layout, filled, defaulted (output norms), ignored.
    """
    if not re.match(r'^(https?|s3)://', filename) and \
            not os.path.isfile(filename):
        raise FileNotFoundError(
            f'pretrained Swin checkpoint not found: {filename} (set '
            f'model.backbone.init_cfg.checkpoint to a local .pth file; see '
            f'README "Pretrained weights")')
    ckpt = load_checkpoint_file(filename)
    sd, layout = to_mmdet_swin_keys(extract_state_dict(ckpt, filename),
                                    filename)

    target = swin.state_dict()
    params = {name for name, _ in swin.named_parameters()}
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}'
        for k, v in sd.items() if k in target and v.shape != target[k].shape
    ]
    if mismatched:
        raise CheckpointLayoutError(
            f'{filename}: {len(mismatched)} Swin weight(s) have the wrong '
            f'shape for this config (another Swin size or window size?): '
            + '; '.join(mismatched[:5]))
    missing = sorted(params - set(sd))
    defaulted = [k for k in missing if _OUTPUT_NORM.match(k)]
    missing = [k for k in missing if not _OUTPUT_NORM.match(k)]
    if missing:
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): {len(missing)} frozen Swin '
            f'weight(s) are missing and would stay random, e.g. '
            f'{missing[:5]}')
    filled = OrderedDict((k, v) for k, v in sd.items() if k in target)
    swin.load_state_dict(filled, strict=False)
    report = dict(layout=layout, filled=len([k for k in filled
                                             if k in params]),
                  defaulted=defaulted,
                  ignored=sorted(set(sd) - set(target)))
    print_log(
        f'Loaded Swin weights from {filename} ({layout} layout): filled '
        f'{report["filled"]}/{len(params)} backbone parameter tensors'
        + (f'; {len(defaulted)} output-norm tensors keep LayerNorm init '
           f'(not part of a classification checkpoint)' if defaulted else '')
        + (f'; ignored {len(report["ignored"])} extra keys'
           if report['ignored'] else ''), logger=logger)
    return report


def swin_fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of a Swin state dict in mmdet keys: names, dtypes,
    shapes and bytes, in sorted key order. Equal fingerprints mean the same
    frozen trunk, whichever file or model the tensors came from."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f'{key}|{t.dtype}|{tuple(t.shape)}\n'.encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
