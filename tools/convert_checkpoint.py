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
import os.path as osp

from dtl_mm.apis.runner_setup import read_config
from dtl_mm.checkpoint.convert import (build_backbone_from, check_output_path,
                                       convert_checkpoint, save_with_hash)
from dtl_mm.checkpoint.safe_load import CheckpointError, load_checkpoint_file
from dtl_mm.checkpoint.trained_config import check_trained_config
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.tool_errors import run_tool


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        'config',
        type=config_arg,
        help='the config the checkpoint was trained with, or a shipped '
        'config name (says which keys are the frozen trunk)')
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


def main():
    args = parse_args()
    try:
        check_output_path(args.dst)
        checkpoint = load_checkpoint_file(args.src)
        cfg = read_config(args.config)
        backbone, cfg = build_backbone_from(cfg, args.config)
        check_trained_config(checkpoint, cfg, args.src)
        default = (cfg.model.backbone.get('init_cfg') or {}).get('checkpoint')
        out = convert_checkpoint(checkpoint, backbone, args.to, args.src,
                                 args.pretrained, default,
                                 args.strip_optimizer)
    except (CheckpointError, ValueError) as e:
        raise SystemExit(str(e)) from None
    final = save_with_hash(out, args.dst)
    mb = osp.getsize(final) / 2**20
    print(f'{args.to} checkpoint written: {final} ({mb:.1f} MiB)')


if __name__ == '__main__':
    run_tool(main)
