"""Check the data files a config points at, without training.

    python tools/check_data.py CONFIG [--splits train val test]

Reads every annotation / label file and image header of the chosen
dataloaders (default: train and val) as training would, prints what it
checked and counted, and "ok"; a broken file stops it with a message that
names the file (exit status 1).
"""
import argparse
import sys

from dtl_mm.apis.runner_setup import read_config
from dtl_mm.checks.data_check import (DataError, check_config_data,
                                      check_toy_data_written)
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.tool_errors import run_tool

SPLITS = ('train', 'val', 'test')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        'config',
        type=config_arg,
        help='config file (or a shipped config name)')
    p.add_argument(
        '--splits',
        nargs='+',
        choices=SPLITS,
        default=['train', 'val'],
        help='the dataloaders to check (default: train val)')
    args = p.parse_args()
    cfg = read_config(args.config)
    splits = [s for s in args.splits if cfg.get(f'{s}_dataloader')]
    if not splits:
        sys.exit(f'{args.config}: no {"/".join(args.splits)}_dataloader '
                 f'to check')
    check_toy_data_written(cfg)
    counted = []
    try:
        warnings = check_config_data(cfg, splits, counted)
    except (DataError, FileNotFoundError) as e:
        print(f'data check failed: {e}', file=sys.stderr)
        return 1
    print(f'checked the {"/".join(splits)} data of {args.config}:')
    for line in counted:
        print(f'  {line}')
    if warnings:
        print(f'  {len(warnings)} warnings (logged above)')
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
