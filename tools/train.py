"""Train a detector or segmentor (mmdet / mmseg config, picked by its scope).

Same arguments as mmdet's and mmseg's tools/train.py.
"""
import argparse
import os.path as osp

import torch
from mmengine.logging import print_log

from dtl_mm.atomic_io import remove_stale_temp_files
from dtl_mm.resume import latest_checkpoint, saved_checkpoints
from dtl_mm.runner_setup import (add_common_args, build_runner,
                                 check_data_once, check_pretrained_trunk,
                                 load_config, parse_tool_args)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='the dir to save logs and models')
    p.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    p.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR')
    p.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or without a value '
        'from the latest checkpoint in the work dir')
    add_common_args(p)
    return parse_tool_args(p)


def resume_from(cfg, resume):
    """--resume CKPT, or --resume alone: the latest checkpoint of the work
    dir. With none there, training starts from scratch (from the config's
    load_from, if any) and says so: a job script can pass --resume on every
    (re)start."""
    if resume != 'auto':
        if '://' not in resume and not osp.isfile(resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: '
                                    f'{resume}')
        cfg.resume, cfg.load_from = True, resume
        return
    ckpt, note = latest_checkpoint(cfg.work_dir)
    if ckpt is None:
        print_log(
            f'--resume: nothing to resume from ({note}); training '
            f'starts from scratch',
            logger='current',
            level=30)
        cfg.resume = False
        return
    print_log(
        f'--resume: resuming from {ckpt}' + (f' ({note})' if note else ''),
        logger='current',
        level=30 if note else 20)
    cfg.resume, cfg.load_from = True, ckpt


def refuse_to_overwrite(cfg):
    """A new run (no --resume) into a work dir that holds checkpoints would
    overwrite them one by one; refused, so that nothing is lost."""
    found = saved_checkpoints(cfg.work_dir)
    if cfg.get('resume') or not found:
        return
    names = ', '.join(osp.basename(p) for p in found[:5])
    raise SystemExit(
        f'the work dir {cfg.work_dir} already holds {len(found)} '
        f'checkpoint(s) of an earlier run ({names}); a new run would '
        f'overwrite them. Continue that run with --resume, train into '
        f'another --work-dir, or move the checkpoints away first.')


def check_amp(cfg):
    """AMP needs a GPU: refused before anything is created."""
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        raise SystemExit(
            'mixed precision (--amp, or optim_wrapper.type='
            '"AmpOptimWrapper") needs a CUDA GPU, and none is available; '
            'train without --amp on this machine')


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    if args.amp:
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print('AMP is already enabled in the config')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.'
                               'base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    check_amp(cfg)
    if args.resume is not None:
        resume_from(cfg, args.resume)
    refuse_to_overwrite(cfg)
    check_pretrained_trunk(cfg)
    check_data_once(cfg, ('train', 'val'), skip=args.skip_data_check)
    remove_stale_temp_files(cfg.work_dir)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
