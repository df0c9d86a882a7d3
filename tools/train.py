"""Train a detector or segmentor (mmdet / mmseg config, picked by its scope).

Same arguments as mmdet's and mmseg's tools/train.py.
"""
import argparse

from dtl_mm.apis.runner_setup import (add_common_args, build_runner, check_amp,
                                      load_config, parse_tool_args)
from dtl_mm.checkpoint.atomic_io import remove_stale_temp_files
from dtl_mm.checkpoint.resume import resume_from
from dtl_mm.checks.data_check import check_data
from dtl_mm.engine.runner.dtl_runner import check_new_training
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.tool_errors import run_tool


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        'config',
        type=config_arg,
        help='train config file path (or a shipped config name)')
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
    # what DTLRunner checks in train(), here before the runner creates its
    # log folder in the work dir; the data files are then not read twice
    check_new_training(cfg)
    if not args.skip_data_check:
        check_data(cfg, ('train', 'val'))
    remove_stale_temp_files(cfg.work_dir)
    build_runner(cfg, check_data=False).train()


if __name__ == '__main__':
    run_tool(main)
