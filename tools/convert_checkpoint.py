"""Convert a dtl_mm checkpoint between lean and self-contained, for sharing.

A lean checkpoint holds what training changed (side network, neck, heads,
and optionally the optimizer state) and a record of the frozen Swin: the
file it came from and a sha256 fingerprint. A self-contained ("full") one
also holds the frozen Swin, so it loads without the pretrained file.

  # lean -> self-contained, e.g. for a machine without the pretrained file
  python tools/convert_checkpoint.py CONFIG lean.pth shared.pth --to full
  # self-contained -> lean, without optimizer state, like publish_model.py
  python tools/convert_checkpoint.py CONFIG epoch_36.pth dtl.pth --to lean \
      --strip-optimizer

As mmdet's publish_model.py does, the first 8 hex digits of the output's
sha256 are appended to its name (dtl.pth -> dtl-1a2b3c4d.pth).
"""
import argparse
import hashlib
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from dtl_mm.checkpoint.safe_load import CheckpointError, load_checkpoint_file
from dtl_mm.checkpoint.trained_config import check_trained_config
from dtl_mm.models import PretrainedSwinTransformer
from dtl_mm.models.weight_loading import (EXTRA_STATE, decode_trunk_record,
                                          encode_trunk_record,
                                          lean_trunk_missing,
                                          pretrained_file_exists,
                                          swin_fingerprint)

# what a shared checkpoint keeps with --strip-optimizer
KEEP = ('meta', 'state_dict')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        'config',
        help='the config the checkpoint was trained '
        'with (says which keys are the frozen Swin)')
    p.add_argument('src', help='checkpoint to convert')
    p.add_argument('dst', help='output file (a short hash is appended)')
    p.add_argument('--to', choices=('lean', 'full'), required=True)
    p.add_argument(
        '--pretrained',
        help='the frozen Swin file (default: --to full: '
        'the one recorded in the checkpoint, else the config\'s '
        'model.backbone.init_cfg.checkpoint, whichever exists; --to lean: '
        'the config\'s); its sha256 must be the recorded one')
    p.add_argument(
        '--strip-optimizer',
        action='store_true',
        help='keep only the weights and meta (no optimizer, '
        'scheduler or message hub state)')
    return p.parse_args()


def build_backbone(config):
    return build_backbone_from(Config.fromfile(config), config)


def build_backbone_from(cfg, config='the config'):
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    model = MODELS.build(model_cfg)  # the trunk: filled from the right file
    backbone = model.backbone
    if not isinstance(backbone, PretrainedSwinTransformer) or \
            not backbone.frozen:
        raise ValueError(f'{config}: lean checkpoints need a frozen dtl_mm '
                         f'Swin backbone (fixed, DTL or a PETL variant); '
                         f'this config trains the whole Swin')
    return backbone, cfg


def to_lean(state, backbone, pretrained, name):
    trunk = ['backbone.swin.' + k for k in backbone.trunk_keys]
    if not all(k in state for k in trunk):
        raise CheckpointError(f'{name}: already lean (or not a full '
                              f'checkpoint of this config)')
    record = decode_trunk_record(state.get('backbone.' + EXTRA_STATE))
    sha = swin_fingerprint(
        {k[len('backbone.swin.'):]: state[k]
         for k in trunk})
    if record is None or record.get('sha256') != sha:
        if not pretrained:
            raise CheckpointError(
                f'{name} records no pretrained file its Swin came from; '
                f'pass --pretrained FILE')
        backbone.load_pretrained(pretrained)
        record = backbone.trunk_record
        if record['sha256'] != sha:
            raise CheckpointError(
                f'{name}: its frozen Swin is not the one in {pretrained} '
                f'(sha256 {sha[:16]}... vs {record["sha256"][:16]}...); a '
                f'lean checkpoint of it could not be restored')
    lean = {k: v for k, v in state.items() if k not in set(trunk)}
    lean['backbone.' + EXTRA_STATE] = encode_trunk_record(record)
    return lean


def to_full(state, backbone, pretrained, name, default=None):
    """``pretrained`` when given; else the recorded file, else the config's
    ``init_cfg.checkpoint``: the first of them that exists, which must hold
    the recorded weights (sha256)."""
    record = decode_trunk_record(state.get('backbone.' + EXTRA_STATE))
    if record is None or any(
            k.startswith('backbone.swin.stages.') for k in state):
        raise CheckpointError(f'{name}: not a lean checkpoint (it holds the '
                              f'Swin already, or no trunk record)')
    candidates = [pretrained] if pretrained else [
        f for f in (record['source'], default)
        if f and pretrained_file_exists(f)
    ]
    if not candidates:
        raise CheckpointError(
            f'{name}: ' +
            lean_trunk_missing(record, default, remedies='--pretrained FILE'))
    backbone.load_pretrained(candidates[0])
    if backbone.trunk_record['sha256'] != record['sha256']:
        raise CheckpointError(
            f'{name} was trained on the Swin from {record["source"]} '
            f'(sha256 {record["sha256"][:16]}...); '
            f'{backbone.trunk_record["source"]} holds other weights')
    full = dict(state)
    full.update(
        {'backbone.swin.' + k: v
         for k, v in backbone.trunk_state().items()})
    return full


def check_output_path(dst):
    """Up front, before any work: a file name the hashed name can use."""
    if osp.isdir(dst) or dst.endswith(os.sep):
        raise SystemExit(f'output {dst} is a folder; give a file name, e.g. '
                         f'{osp.join(dst, "model.pth")}')
    stem, ext = osp.splitext(osp.basename(dst))
    longest = len(f'{stem}-12345678{ext or ".pth"}')
    limit = os.pathconf(
        osp.dirname(osp.abspath(dst)) if osp.isdir(
            osp.dirname(osp.abspath(dst))) else '.', 'PC_NAME_MAX')
    if longest > limit:
        raise SystemExit(f'output name {osp.basename(dst)!r} is too long: '
                         f'with the hash appended it has {longest} '
                         f'characters, the file system allows {limit}')


def save_with_hash(checkpoint, dst):
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    try:
        torch.save(checkpoint, tmp)
        digest = hashlib.sha256()
        with open(tmp, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
        sha = digest.hexdigest()
        stem, ext = osp.splitext(dst)
        final = f'{stem}-{sha[:8]}{ext or ".pth"}'
        os.replace(tmp, final)
    finally:  # a failed save leaves nothing behind
        if osp.exists(tmp):
            os.remove(tmp)
    return final


def main():
    args = parse_args()
    check_output_path(args.dst)
    checkpoint = load_checkpoint_file(args.src)
    state = checkpoint.get('state_dict', checkpoint)
    backbone, cfg = build_backbone(args.config)
    check_trained_config(checkpoint, cfg, args.src)
    default = (cfg.model.backbone.get('init_cfg') or {}).get('checkpoint')
    if args.to == 'lean':
        state = to_lean(state, backbone, args.pretrained or default, args.src)
    else:
        state = to_full(state, backbone, args.pretrained, args.src, default)
    if 'state_dict' in checkpoint:
        out = {
            k: v
            for k, v in checkpoint.items()
            if k in KEEP or not args.strip_optimizer
        }
        out['state_dict'] = state
    else:
        out = state
    final = save_with_hash(out, args.dst)
    mb = osp.getsize(final) / 2**20
    print(f'{args.to} checkpoint written: {final} ({mb:.1f} MiB)')


if __name__ == '__main__':
    main()
