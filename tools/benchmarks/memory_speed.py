"""Memory, speed and parameters of every variant, side by side, in one run.

    python tools/benchmarks/memory_speed.py --out bench/ [--family coco voc]
        [--device cuda] [--scale 0.25] [--tiny] [--variants full dtlv2-ls]

For each family (COCO Cascade Mask R-CNN Swin-B, VOC RetinaNet Swin-L,
ADE20K UperNet Swin-L) and each variant, on the same synthetic batch
(batch 2 at the paper's input size unless --scale/--size say otherwise):
trainable parameters, bytes saved for backward in one training step of the
whole model (backbone / rest), peak memory of one step, step time (median
after warm-up) and backbone inference throughput at batch 1/4/16; with the
paper's #p / #m beside them. Every variant runs in a fresh process, so the
CPU peak (resident set size) is that variant's own. Writes results.md,
results.json and memory_params.png to --out.
"""
import argparse
import json
import math
import os
import os.path as osp
import subprocess
import sys

from measure import FAMILIES, VARIANTS, measure, save_results

from dtl_mm import paper_results
from dtl_mm.swin_presets import TINY_SWIN, TINY_SWIN_CHANNELS


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', help='folder for the results')
    p.add_argument(
        '--family', nargs='+', default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument(
        '--variants',
        nargs='+',
        default=list(VARIANTS),
        choices=list(VARIANTS))
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply the paper input sizes (quick CPU runs)')
    p.add_argument('--infer-batches', type=int, nargs='+', default=[1, 4, 16])
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument(
        '--tiny',
        action='store_true',
        help='a small Swin instead of Swin-B/L (smoke test)')
    p.add_argument(
        '--torch-focal-loss',
        action='store_true',
        help="mmdet's PyTorch focal loss on the GPU, for an mmcv "
        'built without CUDA ops (RetinaNet)')
    p.add_argument(
        '--replot',
        metavar='DIR',
        help='only redraw DIR/memory_params.png from '
        'DIR/results.json')
    p.add_argument(
        '--worker',
        nargs=2,
        metavar=('FAMILY', 'VARIANT'),
        help=argparse.SUPPRESS)
    return p.parse_args()


def scaled(size, scale):
    # padded up to a multiple of 32, as the data preprocessors do
    return [max(64, math.ceil(s * scale / 32) * 32) for s in size]


def use_torch_focal_loss():
    import torch.nn.functional as F
    from mmdet.models.losses import focal_loss

    def focal(pred, target, *args, **kwargs):
        target = F.one_hot(target, pred.size(1) + 1)[:, :pred.size(1)]
        return focal_loss.py_sigmoid_focal_loss(pred, target.type_as(pred),
                                                *args, **kwargs)

    focal_loss.sigmoid_focal_loss = focal


def run_worker(args):
    family, variant = args.worker
    if args.torch_focal_loss:
        use_torch_focal_loss()
    neck = None
    if args.tiny:  # keep neck / head inputs consistent with the small Swin
        chans = TINY_SWIN_CHANNELS
        neck = {
            'coco': {
                'model.neck.in_channels': chans
            },
            'voc': {
                'model.neck.in_channels': chans[1:]
            },
            'ade20k': {
                'model.decode_head.in_channels': chans,
                'model.auxiliary_head.in_channels': chans[2]
            }
        }[family]
    row = measure(
        family,
        variant,
        args.device,
        args.batch,
        scaled(FAMILIES[family]['size'], args.scale),
        infer_batches=args.infer_batches,
        repeats=args.repeats,
        backbone_overrides=TINY_SWIN if args.tiny else None,
        model_overrides=neck)
    print('RESULT ' + json.dumps(row), flush=True)


def run_variant(args, family, variant):
    cmd = [sys.executable, osp.abspath(__file__), '--out', args.out,
           '--worker', family, variant, '--device', args.device, '--batch',
           str(args.batch), '--scale', str(args.scale), '--repeats',
           str(args.repeats), '--infer-batches',
           *map(str, args.infer_batches)] + (['--tiny'] if args.tiny else []) \
        + (['--torch-focal-loss'] if args.torch_focal_loss else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'{family}/{variant} failed:\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def ratio(row, full, key):
    return row[key] / full[key] if full and full.get(key) else float('nan')


def table(family, rows):
    full = next((r for r in rows if r['variant'] == 'full'), None)
    r0 = rows[0]
    out = [
        f'### {family}: {paper_results.describe(family)}, '
        f'batch {r0["batch"]}'
        f', {r0["size"][0]}x{r0["size"][1]}, {r0["device"]}', '',
        '| variant | #p side (M) | #p trainable (M) | saved for backward '
        'backbone / rest / total (MB) | saved ÷ full | peak (MB) | '
        'peak ÷ full | rise in step (MB) | rise ÷ full | step (s) | '
        'step ÷ full | img/s bs ' + '/'.join(
            str(k[len('throughput_bs'):])
            for k in r0 if k.startswith('throughput_bs')) +
        ' | paper #p (M) | paper #m (GB) |', '|---' * 13 + '|'
    ]
    for r in rows:
        mb = 2**20
        thr = '/'.join(f'{v:.3g}' for k, v in r.items()
                       if k.startswith('throughput_bs'))
        # the paper has no row for our '+cp' variants
        p = (paper_results.PARAMS_M[family].get(r['variant'], ''),
             paper_results.MEMORY_GB[family].get(r['variant'], ''))
        out.append(
            f'| {r["variant"]} | {r["params_backbone_side"] / 1e6:.2f} | '
            f'{r["params_trainable"] / 1e6:.2f} | '
            f'{r["saved_backbone"] / mb:.0f} / {r["saved_rest"] / mb:.0f} / '
            f'{r["saved_total"] / mb:.0f} | '
            f'{ratio(r, full, "saved_total"):.2f} | '
            f'{r["peak_bytes"] / mb:.0f} | {ratio(r, full, "peak_bytes"):.2f}'
            f' | {r["peak_rise_bytes"] / mb:.0f} | '
            f'{ratio(r, full, "peak_rise_bytes"):.2f}'
            f' | {r["step_time_s"]:.3f} | {ratio(r, full, "step_time_s"):.2f}'
            f' | {thr} | {p[0]} | {p[1]} |')
    return '\n'.join(out)


def chart(results, path):
    """Per family: backbone-side trainable parameters, the bytes a step
    saves for backward (backbone / rest), the step's peak memory and its
    time; every bar carries its value."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fams = list(results)
    fig, axes = plt.subplots(
        4, len(fams), figsize=(5.5 * len(fams), 13), squeeze=False)
    mb = 2**20
    for j, fam in enumerate(fams):
        rows = results[fam]
        r0 = rows[0]
        names = [r['variant'] for r in rows]
        colors = [
            'tab:red' if n.startswith('dtl') else 'tab:gray' for n in names
        ]
        on_gpu = r0['device'].startswith('cuda')
        where = (f'{fam}, batch {r0["batch"]} at {r0["size"][0]}x'
                 f'{r0["size"][1]}, {"GPU" if on_gpu else "CPU"}')
        ax = axes[0][j]
        bars = ax.bar(
            names, [r['params_backbone_side'] / 1e6 for r in rows],
            color=colors)
        ax.bar_label(bars, fmt='%.2f', fontsize=7)
        ax.set_title(
            f'{where}\nbackbone-side trainable parameters (M)', fontsize=9)
        ax = axes[1][j]
        back = [r['saved_backbone'] / mb for r in rows]
        rest = [r['saved_rest'] / mb for r in rows]
        ax.bar(names, back, color=colors, label='backbone')
        bars = ax.bar(
            names,
            rest,
            bottom=back,
            color='tab:blue',
            alpha=0.5,
            label='rest of the model')
        ax.bar_label(
            bars,
            labels=[f'{b:.0f}/{r:.0f}' for b, r in zip(back, rest)],
            fontsize=6)
        ax.legend(fontsize=7)
        ax.set_title(
            'saved for backward in one training step (MB): '
            'backbone / rest',
            fontsize=9)
        ax = axes[2][j]
        key, label = (('peak_bytes', 'peak GPU memory of one training step '
                       '(MB)') if on_gpu else
                      ('peak_rise_bytes', 'rise of the process RSS in one '
                       'training step (MB)'))
        bars = ax.bar(names, [r[key] / mb for r in rows], color=colors)
        ax.bar_label(bars, fmt='%.0f', fontsize=7)
        ax.set_title(label, fontsize=9)
        ax = axes[3][j]
        bars = ax.bar(names, [r['step_time_s'] for r in rows], color=colors)
        ax.bar_label(bars, fmt='%.3g', fontsize=7)
        ax.set_title('time of one training step (s, median)', fontsize=9)
        for ax in axes[:, j]:
            ax.tick_params(axis='x', rotation=60, labelsize=8)
            ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    args = parse_args()
    if args.worker:
        return run_worker(args)
    if args.replot:
        with open(osp.join(args.replot, 'results.json')) as f:
            return chart(
                json.load(f), osp.join(args.replot, 'memory_params.png'))
    if not args.out:
        sys.exit('--out is required')
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for family in args.family:
        results[family] = []
        for variant in args.variants:
            print(f'[{family}] {variant} ...', flush=True)
            results[family].append(run_variant(args, family, variant))
    md = '\n\n'.join(table(f, rows) for f, rows in results.items())
    save_results(args.out, md, results,
                 (lambda path: chart(results, path), 'memory_params.png'))


if __name__ == '__main__':
    main()
