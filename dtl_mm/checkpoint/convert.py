"""Lean <-> self-contained checkpoints, for sharing.

A lean checkpoint holds what training changed and a record of the frozen
trunk (its file and sha256); a self-contained ("full") one also holds the
trunk, so it loads without the pretrained file. What each holds is the
backbone's own decision (:class:`~dtl_mm.models.trunk_wrapper.
PretrainedTrunk`): its state-dict hook leaves the frozen trunk out and
``get_extra_state`` writes the record; its ``_load_from_state_dict``
restores a lean trunk from the file and checks the fingerprint. This module
only feeds it the checkpoint and picks the pretrained file.

The output is written through :func:`~dtl_mm.checkpoint.atomic_io.
atomic_write` with the first 8 hex digits of its sha256 in its name, as
mmdet's ``publish_model.py`` names files (``dtl.pth`` ->
``dtl-1a2b3c4d.pth``).
"""
import hashlib
import io
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.registry import MODELS, init_default_scope

from ..models.trunk_wrapper import PretrainedTrunk
from .atomic_io import atomic_write
from .errors import CheckpointError, CheckpointLayoutError
from .lean_checkpoint import (EXTRA_STATE, decode_trunk_record,
                              lean_trunk_missing, pretrained_file_exists,
                              trunk_fingerprint)

PREFIX = 'backbone.'  # where the backbone's keys sit in a model checkpoint
# what a shared checkpoint keeps with strip_optimizer
KEEP = ('meta', 'state_dict')


def build_backbone_from(cfg, config='the config'):
    """The config's backbone, with a random trunk (filled from the file the
    conversion picks), and ``cfg``."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    backbone = MODELS.build(model_cfg).backbone
    if not isinstance(backbone, PretrainedTrunk) or not backbone.frozen:
        raise ValueError(f'{config}: lean checkpoints need a frozen dtl_mm '
                         f'backbone (fixed, DTL or a PETL variant); this '
                         f'config trains the whole trunk')
    return backbone, cfg


def _trunk_keys(backbone):
    return [PREFIX + backbone.trunk_prefix + k for k in backbone.trunk_keys]


def to_lean(state, backbone, pretrained, name):
    """``state`` without the frozen trunk, with its record. The record the
    checkpoint holds is kept when it matches the trunk; else ``pretrained``
    must hold the same weights."""
    trunk = _trunk_keys(backbone)
    if not all(k in state for k in trunk):
        raise CheckpointError(f'{name}: already lean (or not a full '
                              f'checkpoint of this config)')
    sha = trunk_fingerprint(
        {k[len(PREFIX + backbone.trunk_prefix):]: state[k]
         for k in trunk})
    record = decode_trunk_record(state.get(PREFIX + EXTRA_STATE))
    if record is None or record.get('sha256') != sha:
        if not pretrained:
            raise CheckpointError(
                f'{name} records no pretrained file its '
                f'{backbone.TRUNK_NAME} came from; pass --pretrained FILE')
        backbone.load_pretrained(pretrained)
        if backbone.trunk_record['sha256'] != sha:
            raise CheckpointError(
                f'{name}: its frozen {backbone.TRUNK_NAME} is not the one in '
                f'{pretrained} (sha256 {sha[:16]}... vs '
                f'{backbone.trunk_record["sha256"][:16]}...); a lean '
                f'checkpoint of it could not be restored')
    else:
        backbone.trunk_record = record
    backbone.lean_checkpoint = True
    kept = backbone.state_dict(prefix=PREFIX)
    left_out = set(trunk) - set(kept)
    lean = {k: v for k, v in state.items() if k not in left_out}
    lean[PREFIX + EXTRA_STATE] = kept[PREFIX + EXTRA_STATE]
    return lean


def to_full(state, backbone, pretrained, name, default=None):
    """``state`` with the frozen trunk, from ``pretrained`` when given;
    else the recorded file, else the config's ``init_cfg.checkpoint``
    (``default``): the first of them that exists, which must hold the
    recorded weights (sha256)."""
    record = decode_trunk_record(state.get(PREFIX + EXTRA_STATE))
    if record is None or any(k in state for k in _trunk_keys(backbone)):
        raise CheckpointError(
            f'{name}: not a lean checkpoint (it holds the '
            f'{backbone.TRUNK_NAME} already, or no trunk record)')
    candidates = [pretrained] if pretrained else [
        f for f in (record['source'], default)
        if f and pretrained_file_exists(f)
    ]
    if not candidates:
        raise CheckpointError(
            f'{name}: ' +
            lean_trunk_missing(record, default, remedies='--pretrained FILE'))
    backbone.pretrained = candidates[0]
    own = {
        k[len(PREFIX):]: v
        for k, v in state.items() if k.startswith(PREFIX)
    }
    try:
        # loads the file, checks it against the record, fills the trunk
        backbone.load_state_dict(own)
    except (CheckpointLayoutError, RuntimeError) as e:
        raise CheckpointError(f'{name}: {e}') from None
    backbone.lean_checkpoint = False
    full = dict(state)
    full.update((k, v) for k, v in backbone.state_dict(prefix=PREFIX).items()
                if k not in state)
    return full


def is_lean(state, backbone) -> bool:
    """A lean checkpoint of this backbone: no trunk weight, a record of the
    pretrained trunk."""
    trunk = _trunk_keys(backbone)
    return not any(k in state for k in trunk) and decode_trunk_record(
        state.get(PREFIX + EXTRA_STATE)) is not None


def convert_checkpoint(checkpoint,
                       backbone,
                       to: str,
                       name: str,
                       pretrained: Optional[str] = None,
                       default: Optional[str] = None,
                       strip_optimizer: bool = False):
    """A whole checkpoint (or a bare state dict) converted ``to`` 'lean' or
    'full'; ``strip_optimizer`` keeps only the weights and meta."""
    state = checkpoint.get('state_dict', checkpoint)
    if to == 'lean' and is_lean(state, backbone):
        # nothing to leave out; what is left to do is dropping the
        # training state
        if not strip_optimizer or 'state_dict' not in checkpoint:
            raise CheckpointError(
                f'{name}: already lean; to keep only its weights, add '
                f'--strip-optimizer')
    elif to == 'lean':
        state = to_lean(state, backbone, pretrained or default, name)
    elif to == 'full':
        state = to_full(state, backbone, pretrained, name, default)
    else:
        raise ValueError(f'to must be "lean" or "full", got {to!r}')
    if 'state_dict' not in checkpoint:
        return state
    out = {
        k: v
        for k, v in checkpoint.items() if k in KEEP or not strip_optimizer
    }
    out['state_dict'] = state
    return out


def hashed_name(dst, sha256):
    """``dir/dtl.pth`` -> ``dir/dtl-<sha256[:8]>.pth`` (publish_model.py's
    naming; ``.pth`` when ``dst`` has no extension)."""
    stem, ext = osp.splitext(dst)
    return f'{stem}-{sha256[:8]}{ext or ".pth"}'


def check_output_path(dst):
    """Up front, before any work: a file name the hashed name can use."""
    if osp.isdir(dst) or dst.endswith(os.sep):
        raise ValueError(f'output {dst} is a folder; give a file name, e.g. '
                         f'{osp.join(dst, "model.pth")}')
    longest = len(hashed_name(osp.basename(dst), '0' * 8))
    folder = osp.dirname(osp.abspath(dst))
    limit = os.pathconf(folder if osp.isdir(folder) else '.', 'PC_NAME_MAX')
    if longest > limit:
        raise ValueError(f'output name {osp.basename(dst)!r} is too long: '
                         f'with the hash appended it has {longest} '
                         f'characters, the file system allows {limit}')


def save_with_hash(checkpoint, dst):
    """Writes ``checkpoint`` atomically as ``<dst stem>-<sha256[:8]><ext>``
    and returns that path; a failed write leaves nothing behind."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)  # in memory, as mmengine saves too
    data = buffer.getvalue()
    final = hashed_name(dst, hashlib.sha256(data).hexdigest())
    atomic_write(data, final)
    return final
