"""File size and save time of full vs lean checkpoints, at the real sizes.

    python tools/benchmarks/checkpoint_size.py \
        --out docs/benchmarks/checkpoints

Builds the DTLv2-LS model of each family (COCO Cascade Mask R-CNN Swin-B,
VOC RetinaNet Swin-L, ADE20K UperNet Swin-L) from its shipped config with
random weights (sizes do not depend on values), gives it an AdamW state for
every trainable tensor, and saves it the way training does (mmengine's
``save_checkpoint``: state dict to CPU, ``torch.save``, atomic write) as
full and lean, with and without optimizer state. Writes results.md and
results.json to --out.
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import torch
from measure import FAMILIES, save_results
from mmengine.config import Config
from mmengine.runner.checkpoint import (get_state_dict, save_checkpoint,
                                        weights_to_cpu)

import dtl_mm  # noqa: F401  (registers the backbones)
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models import trunk_fingerprint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LABELS = {
    'coco': 'COCO Cascade Mask R-CNN, Swin-B',
    'voc': 'VOC RetinaNet, Swin-L',
    'ade20k': 'ADE20K UperNet, Swin-L'
}


def build(family):
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format('dtlv2-ls')))
    source = cfg.model.backbone.init_cfg.checkpoint
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    backbone = model.backbone
    # what loading the release file would record; values do not matter
    backbone.trunk_record = dict(
        source=source, sha256=trunk_fingerprint(backbone.trunk_state()))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return model, optimizer


def save(model, optimizer, lean, with_optimizer, path):
    model.backbone.lean_checkpoint = lean
    start = time.perf_counter()
    checkpoint = dict(
        meta=dict(epoch=1, iter=1),
        state_dict=weights_to_cpu(get_state_dict(model)))
    if with_optimizer:
        checkpoint['optimizer'] = optimizer.state_dict()
    save_checkpoint(checkpoint, path)
    seconds = time.perf_counter() - start
    size = osp.getsize(path)
    os.remove(path)
    return size, seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True)
    p.add_argument(
        '--family', nargs='+', default=list(FAMILIES), choices=list(FAMILIES))
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory(
            dir=args.out if osp.isdir(args.out) else None) as tmp:
        for family in args.family:
            model, optimizer = build(family)
            for lean in (False, True):
                for with_opt in (True, False):
                    size, seconds = save(model, optimizer, lean, with_opt,
                                         osp.join(tmp, 'ckpt.pth'))
                    rows.append(
                        dict(
                            family=family,
                            lean=lean,
                            optimizer=with_opt,
                            bytes=size,
                            seconds=round(seconds, 3)))
                    print(rows[-1], flush=True)
            del model, optimizer
    lines = [
        '| model (DTLv2-LS) | checkpoint | with optimizer state | '
        'without |', '|---|---|---|---|'
    ]
    for family in args.family:
        for lean in (False, True):
            cells = {
                r['optimizer']: r
                for r in rows if r['family'] == family and r['lean'] == lean
            }
            lines.append(f'| {LABELS[family]} | '
                         f'{"lean" if lean else "full"} | ' + ' | '.join(
                             f'{cells[o]["bytes"] / 2**20:.1f} MiB, saved '
                             f'in {cells[o]["seconds"]:.2f} s'
                             for o in (True, False)) + ' |')
    save_results(args.out, '\n'.join(lines), rows)


if __name__ == '__main__':
    main()
