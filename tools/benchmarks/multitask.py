"""K tasks on one frozen Swin-L trunk vs K separate models: latency,
throughput and memory, and the effect of the first add-back block M.

    python tools/benchmarks/multitask.py --out OUT [--device cuda]
        [--scale 0.5] [--batch 2] [--repeats 3] [--ks 1 2 3 4]
        [--ms 7 13 19]

Tasks, all DTLv2-LS on Swin-L, added in this order for K = 1..4: VOC
RetinaNet, ADE20K UperNet, COCO Cascade Mask R-CNN, and a second ADE20K
UperNet (DTLv2). Every task reads the same input (the common preprocessing
is the first task's: 1000x600, padded to a multiple of 32, times --scale).
Each (K, shared | separate) measurement runs in a fresh process, so its
CPU peak (resident set size) is its own; the shared run then rebuilds the
K models alone and checks that their predictions are identical. The M sweep
runs the first three tasks with first_g_block = M. Writes results.md,
results.json and multitask.png to OUT.
"""
import argparse
import ctypes
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

import torch
from measure import ROOT, RSSPeak, save_results
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from dtl_mm.apis.inferencer import samples_for
from dtl_mm.apis.multitask import MultiTaskModel
from dtl_mm.apis.runner_setup import build_model

TASKS = (  # name, config, scope
    ('voc', 'configs/voc/retinanet_swin-l_dtlv2-ls_fpn_voc0712.py', 'mmdet'),
    ('ade20k', 'configs/ade20k/upernet_swin-l_dtlv2-ls_160k_ade20k-512x512.py',
     'mmseg'),
    ('coco', 'configs/coco/cascade-mask-rcnn_swin-l_dtlv2-ls_fpn_3x_coco.py',
     'mmdet'),
    ('ade20k-dtlv2',
     'configs/ade20k/upernet_swin-l_dtlv2_160k_ade20k-512x512.py', 'mmseg'),
)
SCOPES = {name: scope for name, _, scope in TASKS}
VOC_SIZE = (600, 1000)  # the first task's test scale (H, W)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='folder for the results')
    p.add_argument('--device', default='cpu')
    p.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply the input size (quick CPU runs)')
    p.add_argument(
        '--batch',
        type=int,
        default=2,
        help='batch size of the throughput figure')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--ks', type=int, nargs='+', default=[1, 2, 3, 4])
    p.add_argument('--ms', type=int, nargs='+', default=[7, 13, 19])
    p.add_argument(
        '--worker', nargs=2, metavar=('K', 'M'), help=argparse.SUPPRESS)
    return p.parse_args()


def input_size(scale):
    return tuple(max(64, math.ceil(s * scale / 32) * 32) for s in VOC_SIZE)


def build_tasks(k, m=None):
    """The first k tasks with one random frozen Swin (seeded: every process
    builds the same weights)."""
    models, swin = {}, None
    for i, (name, path, _) in enumerate(TASKS[:k]):
        cfg = Config.fromfile(osp.join(ROOT, path))
        cfg.model.backbone.init_cfg = None
        if m is not None:
            cfg.model.backbone.first_g_block = m
        torch.manual_seed(i)
        model = build_model(cfg).eval()
        if swin is None:
            swin = model.backbone.swin.state_dict()
        own = model.backbone.swin.state_dict()
        model.backbone.swin.load_state_dict(
            {n: swin[n] if n in swin else v
             for n, v in own.items()})
        with torch.no_grad():  # non-zero side networks
            for p in model.backbone.csn.parameters():
                p.normal_(0, 0.02)
        models[name] = model
    return models


def make_batch(models, batch, size, device):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, *size, generator=g).to(device)
    meta = dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0))
    base = [BaseDataElement(metainfo=meta) for _ in range(batch)]
    return inputs, {
        name: samples_for(SCOPES[name], base, inputs)
        for name in models
    }


def timed_pair(fns, device, repeats):
    """Median wall time of each function, calls interleaved so that a busy
    machine slows every variant alike (one warm-up call each first)."""

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    times = {key: [] for key in fns}
    for i in range(repeats + 1):
        for key, fn in fns.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            if i:
                times[key].append(time.perf_counter() - t)
    return {key: statistics.median(v) for key, v in times.items()}


def unique_param_bytes(module):
    seen = {}
    for t in list(module.parameters()) + list(module.buffers()):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def peak_rise(fn, device):
    """Memory one call adds on top of what is resident before it: GPU
    allocator peak, or the process's resident set size on the CPU (free
    heap memory handed back to the system first)."""
    if device.type == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        return torch.cuda.max_memory_allocated() - before
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with RSSPeak() as rss:
        before = rss.peak
        fn()
    return rss.peak - before


def run_worker(args):
    """K tasks, shared and separate, built in this process from the same
    seeds and timed interleaved on the same inputs."""
    k, m = int(args.worker[0]), args.worker[1]
    # each row is also kept in OUT/rows/, so an interrupted run (or one
    # split over several machines) reuses what it has measured
    kept = osp.join(args.out, 'rows', f'K{k}_M{m}.json')
    if osp.isfile(kept):
        with open(kept) as f:
            print('RESULT ' + f.read(), flush=True)
        return
    m = None if m == 'default' else int(m)
    device = torch.device(args.device)
    size = input_size(args.scale)
    mt = MultiTaskModel(build_tasks(k, m)).to(device).eval()
    separate = build_tasks(k, m)
    for model in separate.values():
        model.to(device)
    names = list(separate)
    model0 = separate[names[0]].backbone

    def shared_predict(inputs, samples):
        with torch.no_grad():
            return mt.predict(inputs, samples)

    def separate_predict(inputs, samples):
        with torch.no_grad():
            return {
                n: separate[n](inputs, samples[n], mode='predict')
                for n in names
            }

    def shared_backbones(x):
        with torch.no_grad():
            state = mt.shared_trunk(x)
            return [
                mt.models[n].backbone.backbone.forward_rest(state)
                for n in names
            ]

    def separate_backbones(x):
        with torch.no_grad():
            return [separate[n].backbone(x) for n in names]

    one = make_batch(separate, 1, size, device)
    row = dict(
        k=k,
        m=m,
        size=list(size),
        device=str(device),
        shared_blocks=mt.shared_blocks,
        total_blocks=sum(model0.depths),
        params_shared=unique_param_bytes(mt),
        params_separate=unique_param_bytes(
            torch.nn.ModuleList(separate.values())),
        rise_shared=peak_rise(lambda: shared_predict(*one), device),
        rise_separate=peak_rise(lambda: separate_predict(*one), device),
        identical=identical(shared_predict(*one), separate_predict(*one)))
    t = timed_pair(
        dict(
            shared=lambda: shared_predict(*one),
            separate=lambda: separate_predict(*one),
            shared_backbones=lambda: shared_backbones(one[0]),
            separate_backbones=lambda: separate_backbones(one[0]),
            trunk=lambda: mt.shared_trunk(one[0]),
            backbone=lambda: model0(one[0])), device, args.repeats)
    row.update({f'{key}_s': v for key, v in t.items()})
    many = make_batch(separate, args.batch, size, device)
    t = timed_pair(
        dict(
            shared=lambda: shared_predict(*many),
            separate=lambda: separate_predict(*many)), device, 1)
    row.update(
        throughput_shared=args.batch / t['shared'],
        throughput_separate=args.batch / t['separate'])
    os.makedirs(osp.dirname(kept), exist_ok=True)
    with open(kept, 'w') as f:
        f.write(json.dumps(row))
    print('RESULT ' + json.dumps(row), flush=True)


def identical(shared, alone):
    """Each model alone on the same input tensor gives the same numbers."""
    for name, ref in alone.items():
        for a, b in zip(shared[name], ref):
            if 'pred_instances' in b:
                fields = [(a.pred_instances.get(f), b.pred_instances.get(f))
                          for f in ('bboxes', 'scores', 'labels', 'masks')
                          if f in b.pred_instances]
            else:
                fields = [(a.seg_logits.data, b.seg_logits.data)]
            if not all(torch.equal(x, y) for x, y in fields):
                return False
    return True


def run(args, k, m='default'):
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--out', args.out, '--worker',
        str(k),
        str(m), '--device', args.device, '--scale',
        str(args.scale), '--batch',
        str(args.batch), '--repeats',
        str(args.repeats)
    ]
    print(f'K={k} M={m} ...', flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'K={k} M={m} failed:\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def ratio(row, key):
    return row[f'shared{key}'] / row[f'separate{key}']


def tables(rows, sweep):
    mb = 2**20
    names = ', '.join(n for n, _, _ in TASKS)
    r0 = rows[0]
    out = [
        f'### K tasks: shared trunk vs K separate models ({names}, '
        f'added in this order), {r0["size"][0]}x{r0["size"][1]}, '
        f'{r0["device"]}', '',
        '| K | shared blocks | latency bs1 shared / separate (s) | '
        'ratio | backbones only shared / separate (s) | ratio | '
        'img/s shared / separate | weights shared / separate (MB) | '
        'peak rise shared / separate (MB) | identical |', '|---' * 10 + '|'
    ]
    for r in rows:
        out.append(
            f'| {r["k"]} | 1..{r["shared_blocks"]} of {r["total_blocks"]} | '
            f'{r["shared_s"]:.2f} / {r["separate_s"]:.2f} | '
            f'{ratio(r, "_s"):.2f} | '
            f'{r["shared_backbones_s"]:.2f} / '
            f'{r["separate_backbones_s"]:.2f} | '
            f'{ratio(r, "_backbones_s"):.2f} | '
            f'{r["throughput_shared"]:.3g} / '
            f'{r["throughput_separate"]:.3g} | '
            f'{r["params_shared"] / mb:.0f} / '
            f'{r["params_separate"] / mb:.0f} | '
            f'{r["rise_shared"] / mb:.0f} / {r["rise_separate"] / mb:.0f} | '
            f'{"yes" if r["identical"] else "NO"} |')
    first3 = ', '.join(n for n, _, _ in TASKS[:3])
    out += [
        '', f'### First add-back block M ({first3})', '',
        '| M | shared blocks | trunk ÷ one backbone (time) | latency '
        'bs1 shared / separate (s) | ratio | backbones only ratio | '
        'identical |', '|---' * 7 + '|'
    ]
    for m, r in sweep:
        out.append(f'| {m} | {r["shared_blocks"]} of {r["total_blocks"]} '
                   f'({r["shared_blocks"] / r["total_blocks"]:.0%}) | '
                   f'{r["trunk_s"] / r["backbone_s"]:.0%} | '
                   f'{r["shared_s"]:.2f} / {r["separate_s"]:.2f} | '
                   f'{ratio(r, "_s"):.2f} | {ratio(r, "_backbones_s"):.2f} | '
                   f'{"yes" if r["identical"] else "NO"} |')
    return '\n'.join(out)


def chart(rows, sweep, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    ks = [r['k'] for r in rows]
    for mode, colour in (('separate', 'tab:gray'), ('shared', 'tab:red')):
        for key, style, label in (('', '-o', 'whole models'),
                                  ('_backbones', '--s', 'backbones only')):
            a.plot(
                ks, [r[f'{mode}{key}_s'] for r in rows],
                style,
                color=colour,
                label=f'{mode}: {label}')
    a.set_xlabel('tasks K')
    a.set_ylabel('latency at batch 1 (s)')
    a.set_xticks(ks)
    a.legend(fontsize=8)
    a.set_title('K tasks on one Swin-L trunk', fontsize=10)
    x = range(len(sweep))
    b.bar([i - 0.2 for i in x], [r['separate_s'] for _, r in sweep],
          0.4,
          color='tab:gray',
          label='3 separate models')
    b.bar([i + 0.2 for i in x], [r['shared_s'] for _, r in sweep],
          0.4,
          color='tab:red',
          label='3 tasks, shared trunk')
    for i, (_, r) in enumerate(sweep):
        b.text(
            i + 0.2,
            r['shared_s'],
            f'{ratio(r, "_s"):.2f}x',
            ha='center',
            va='bottom',
            fontsize=8)
    b.set_xticks(list(x), [f'M = {m}' for m, _ in sweep])
    b.set_ylabel('latency at batch 1 (s)')
    b.legend(fontsize=8)
    b.set_title('first add-back block M', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    args = parse_args()
    if args.worker:
        return run_worker(args)
    os.makedirs(args.out, exist_ok=True)
    rows = [run(args, k) for k in args.ks]
    sweep = [
        (m,
         next(r for r in rows
              if r['k'] == 3) if m == 13 and 3 in args.ks else run(args, 3, m))
        for m in args.ms
    ]  # 13: the configs' own M
    save_results(args.out, tables(rows, sweep), dict(rows=rows, sweep=sweep),
                 (lambda path: chart(rows, sweep, path), 'multitask.png'))


if __name__ == '__main__':
    main()
