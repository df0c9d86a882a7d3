"""The README's first command: DTLv2-LS Cascade Mask R-CNN on toy COCO, CPU.

1. writes the toy shapes data set in COCO layout (data/toy/coco),
2. evaluates the untrained model with tools/test.py (the baseline),
3. trains it with tools/train.py,
4. evaluates the trained checkpoint with tools/test.py,
and prints the parameter table and bbox / segm AP before and after.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time

import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/demo/cascade-mask-rcnn_swin-t_dtlv2-ls_toy-coco.py'
METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
           'coco/segm_mAP_50')


def run(cmd, log):
    """Runs a tool, streaming its progress lines, returns its output."""
    print('$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.Popen(
        [sys.executable] + cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    lines = []
    with open(log, 'w') as f:
        for line in proc.stdout:
            f.write(line)
            lines.append(line)
            if re.search(
                    r'Epoch\((train|test)\)|Parameters|^\w.*\s[\d,]+\s+'
                    r'[\d,]+$|Saving checkpoint|Error|error:', line):
                print('  ' + line.rstrip()[:160], flush=True)
    if proc.wait() != 0:
        sys.exit(f'{cmd[0]} failed; full log: {log}')
    return ''.join(lines)


def metrics(output):
    found = {}
    for key in METRICS:
        m = re.findall(re.escape(key) + r': (-?[\d.]+)', output)
        if not m and 'results of the whole dataset is empty' in output:
            m = ['0.0']  # CocoMetric reports nothing when nothing was found
        if not m:
            sys.exit(f'metric {key} missing from the test output')
        found[key] = float(m[-1])
    return found


def save_untrained(cfg, path):
    """The model exactly as training starts it (same seed, same init)."""
    from mmengine.runner import set_random_seed

    from dtl_mm.apis.runner_setup import build_model
    set_random_seed(cfg.randomness.seed)
    model = build_model(cfg)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--epochs', type=int, default=None)
    args = p.parse_args()
    start = time.time()
    wd = osp.join(ROOT, args.work_dir)
    os.makedirs(wd, exist_ok=True)

    data = osp.join(ROOT, 'data/toy/coco')
    if not osp.isfile(osp.join(data, 'annotations/instances_val2017.json')):
        print('[1/4] writing the toy COCO data set to data/toy/coco')
        from dtl_mm.testing.toy_data import make_coco
        make_coco(data)
    else:
        print('[1/4] toy COCO data set found in data/toy/coco')

    # one set of overrides for the in-process baseline and the tools (the
    # config fixes the seed)
    overrides = {}
    if args.epochs:
        overrides['train_cfg.max_epochs'] = args.epochs
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    cfg.merge_from_dict(overrides)
    epochs = cfg.train_cfg.max_epochs
    extra = [f'{k}={v}' for k, v in overrides.items()]
    extra = ['--cfg-options', *extra] if extra else []

    print('[2/4] evaluating the untrained model (baseline)', flush=True)
    untrained = osp.join(wd, 'untrained.pth')
    save_untrained(cfg, untrained)
    before = metrics(
        run(['tools/test.py', CONFIG, untrained, '--work-dir', wd] + extra,
            osp.join(wd, 'test_untrained.log')))

    print(f'[3/4] training DTLv2-LS for {epochs} epochs on CPU', flush=True)
    out = run(['tools/train.py', CONFIG, '--work-dir', wd] + extra,
              osp.join(wd, 'train.log'))
    table = re.search(r'Parameters \(trainable / frozen\):\n((?:.*\n){6})',
                      out)

    print('[4/4] evaluating the trained checkpoint', flush=True)
    after = metrics(
        run([
            'tools/test.py', CONFIG,
            osp.join(wd, f'epoch_{epochs}.pth'), '--work-dir', wd
        ] + extra, osp.join(wd, 'test_trained.log')))

    print('\nParameters (trainable / frozen):')
    print(table.group(1) if table else '(not found in the training log)')
    print(f'{"metric":<20} {"untrained":>10} {"trained":>10}')
    for key in METRICS:
        print(f'{key:<20} {before[key]:>10.3f} {after[key]:>10.3f}')
    print(f'\ndone in {time.time() - start:.0f} s; logs and checkpoints in '
          f'{args.work_dir}')


if __name__ == '__main__':
    main()
