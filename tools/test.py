"""Test (evaluate) a checkpoint with an mmdet or mmseg config.

Same arguments as mmdet's and mmseg's tools/test.py.
"""
import argparse
import os.path as osp

from dtl_mm.apis.runner_setup import (add_common_args, build_runner,
                                      load_config, parse_tool_args,
                                      setup_test_outputs)
from dtl_mm.checks.data_check import check_data
from dtl_mm.utils.model_unwrap import bare_model
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.tool_errors import run_tool


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        'config',
        type=config_arg,
        help='test config file path (or a shipped config name)')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='the dir to save the evaluation log')
    p.add_argument(
        '--out',
        help='detection: .pkl file of the raw results; '
        'segmentation: folder for the predicted label maps')
    p.add_argument('--show', action='store_true', help='show results')
    p.add_argument('--show-dir', help='folder to draw the predictions in')
    p.add_argument('--wait-time', type=float, default=2)
    p.add_argument(
        '--backbone-from-pretrained',
        nargs='?',
        const='',
        metavar='SWIN_CKPT',
        help='load the frozen Swin from SWIN_CKPT (default: '
        'model.backbone.init_cfg.checkpoint) before the checkpoint'
        '; lean checkpoints take it from init_cfg by themselves')
    add_common_args(p)
    return parse_tool_args(p)


def main():
    args = parse_args()
    if not args.checkpoint.startswith(('http://', 'https://')) and \
            not osp.isfile(osp.expanduser(args.checkpoint)):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    cfg.load_from = args.checkpoint
    setup_test_outputs(cfg, args.out, args.show, args.show_dir, args.wait_time)
    if not args.skip_data_check:  # before the runner and its model
        check_data(cfg, ('test', ))
    runner = build_runner(cfg, check_data=False)
    if args.backbone_from_pretrained is not None:
        model = runner.model
        backbone = bare_model(model).backbone
        backbone.pretrained = args.backbone_from_pretrained or \
            getattr(backbone, 'pretrained', None)
        if not backbone.pretrained:
            raise ValueError('--backbone-from-pretrained needs a Swin '
                             'checkpoint path or model.backbone.init_cfg')
        backbone.load_pretrained()
    runner.test()


if __name__ == '__main__':
    run_tool(main)
