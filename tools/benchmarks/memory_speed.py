"""The memory / step-time frontier of whole models, every configuration
side by side, measured in one run.

    python tools/benchmarks/memory_speed.py --out bench/ [--family coco voc]
        [--device cuda] [--scale 0.5] [--batch 1] [--tiny]
        [--variants full full+cp dtlv2-ls+cp+heads ...]

For each family (COCO Cascade Mask R-CNN Swin-B, VOC RetinaNet Swin-L,
ADE20K UperNet Swin-L; and, asked for by name, `ade20k-vit-b`: UperNet +
mmpretrain's ViT-B/16, which needs the `vision` stack) and each
configuration (a variant, then '+cp' or
'+sel' for the backbone checkpointed fully or selectively, then '+heads'
for the neck and heads checkpointed; measure.VARIANTS), on the same
synthetic batch: trainable parameters; model-state bytes (weights, and
gradients + AdamW moments of what trains); bytes saved for backward in one
training step, split backbone / side network / neck+heads; memory (the
allocator's peak on a GPU, model state + saved on the CPU); step time
(median after a warm-up; on the CPU the process's CPU time, see
measure.step_time) and its ratio to `full`; for each baseline, the
DTL rows that are at most equal on both axes. Each configuration runs in a
fresh process. Writes results.md, results.json and frontier.png (memory
against step time, one point per configuration) to --out.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

from measure import (FAMILIES, PAPER_FAMILIES, VARIANTS, describe, measure,
                     parse_variant, save_results, scaled)

from dtl_mm import paper_results
from dtl_mm.models.swin_presets import TINY_SWIN, TINY_SWIN_CHANNELS


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', help='folder for the results')
    p.add_argument(
        '--family',
        nargs='+',
        default=list(PAPER_FAMILIES),
        choices=list(FAMILIES),
        help='default: the paper\'s (%(default)s); ade20k-vit-b needs '
        'mmpretrain')
    p.add_argument(
        '--variants',
        nargs='+',
        default=list(VARIANTS),
        type=variant_name,
        help='configurations (default: %(default)s)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply the paper input sizes (quick CPU runs)')
    p.add_argument(
        '--infer-batches',
        type=int,
        nargs='*',
        default=[],
        help='also measure backbone inference throughput at these batch '
        'sizes')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument(
        '--amp',
        choices=['fp16', 'bf16'],
        help='the forward under autocast (mixed precision)')
    p.add_argument(
        '--saved-only',
        action='store_true',
        help='parameters, model state and saved-for-backward bytes only '
        '(one forward + backward per configuration; no timing)')
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
        help='only rewrite DIR/results.md and DIR/frontier.png from '
        'DIR/results.json')
    p.add_argument(
        '--worker',
        nargs=2,
        metavar=('FAMILY', 'VARIANT'),
        help=argparse.SUPPRESS)
    return p.parse_args()


def variant_name(name):
    try:
        parse_variant(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    return name


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
        what=('params', 'saved') if args.saved_only else
        ('params', 'saved', 'peak', 'time', 'throughput'),
        backbone_overrides=TINY_SWIN if args.tiny else None,
        model_overrides=neck,
        amp=args.amp)
    print('RESULT ' + json.dumps(row), flush=True)


def run_variant(args, family, variant):
    cmd = [sys.executable, osp.abspath(__file__), '--out', args.out,
           '--worker', family, variant, '--device', args.device, '--batch',
           str(args.batch), '--scale', str(args.scale), '--repeats',
           str(args.repeats), '--infer-batches',
           *map(str, args.infer_batches)] + (['--tiny'] if args.tiny else []) \
        + (['--saved-only'] if args.saved_only else []) \
        + (['--torch-focal-loss'] if args.torch_focal_loss else []) \
        + (['--amp', args.amp] if args.amp else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'{family}/{variant} failed:\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def ratio(row, full, key):
    if not (full and full.get(key)):
        return float('nan')
    return row.get(key, float('nan')) / full[key]


def is_dtl(variant):
    return variant.startswith('dtl')


def dominators(row, rows):
    """The DTL rows at most equal to ``row`` in memory and in step time."""
    if 'step_time_s' not in row:
        return ['(not timed)']
    return [
        r['variant'] for r in rows
        if is_dtl(r['variant']) and r['memory_bytes'] <= row['memory_bytes']
        and r['step_time_s'] <= row['step_time_s']
    ]


def table(family, rows):
    full = next((r for r in rows if r['variant'] == 'full'), None)
    r0 = rows[0]
    on_gpu = r0['device'].startswith('cuda')
    memory = ('GPU peak' if on_gpu else 'model state + saved')
    clock = 'wall' if on_gpu else 'CPU time'
    mb = 2**20
    out = [
        f'### {family}: {describe(family)}, '
        f'batch {r0["batch"]}, {r0["size"][0]}x{r0["size"][1]}, '
        f'{r0["device"]}, {r0.get("amp", "fp32")}', '',
        '| configuration | #p trainable (M) | model state (MB) | saved for '
        'backward backbone / side / heads = total (MB) | saved ÷ full | '
        f'memory: {memory} (MB) | memory ÷ full | step, {clock} (s) | '
        'step ÷ full | at most equal on both axes (DTL rows) | paper #m '
        '(GB) |', '|---' * 11 + '|'
    ]
    for r in rows:
        base = parse_variant(r['variant'])[0]
        paper = (
            paper_results.MEMORY_GB.get(family, {}).get(base, '')
            if base == r['variant'] else '')
        if is_dtl(r['variant']):
            beaten = ''
        elif base == 'fixed':  # not an alternative: nothing trains there
            beaten = '(floor: the backbone does not train)'
        else:
            beaten = ', '.join(dominators(r, rows)) or '**none**'
        out.append(
            f'| {r["variant"]} | {r["params_trainable"] / 1e6:.2f} | '
            f'{r["model_state_bytes"] / mb:.0f} | '
            f'{r["saved_backbone"] / mb:.0f} / {r["saved_side"] / mb:.0f} / '
            f'{r["saved_heads"] / mb:.0f} = {r["saved_total"] / mb:.0f} | '
            f'{ratio(r, full, "saved_total"):.3f} | '
            f'{r["memory_bytes"] / mb:.0f} | '
            f'{ratio(r, full, "memory_bytes"):.3f} | '
            f'{r.get("step_time_s", float("nan")):.3g} | '
            f'{ratio(r, full, "step_time_s"):.2f} | '
            f'{beaten} | {paper} |')
    return '\n'.join(out)


def tables(results):
    return '\n\n'.join(table(f, rows) for f, rows in results.items())


COLOURS = {'dtl': 'tab:red', 'full': 'tab:gray', 'fixed': 'tab:green'}


def chart(results, path):
    """Per family, memory against step time, one labelled point per
    configuration; the DTL points joined (in step-time order) as the
    frontier they span."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    fams = list(results)
    fig, axes = plt.subplots(
        1, len(fams), figsize=(7 * len(fams), 6), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        rows = results[fam]
        r0 = rows[0]
        on_gpu = r0['device'].startswith('cuda')
        for i, r in enumerate(sorted(rows, key=lambda r: r['step_time_s'])):
            kind = ('dtl'
                    if is_dtl(r['variant']) else r['variant'].split('+')[0])
            x, y = r['step_time_s'], r['memory_bytes'] / 2**20
            ax.scatter(x, y, color=COLOURS.get(kind, 'tab:blue'), zorder=3)
            # labels alternate above and below: neighbours do not overlap
            ax.annotate(
                f'{r["variant"]}\n{y:.0f} MB, {x:.3g} s', (x, y),
                textcoords='offset points',
                xytext=(3, 5 if i % 2 else -20),
                fontsize=6)
        dtl = sorted((r for r in rows if is_dtl(r['variant'])),
                     key=lambda r: r['step_time_s'])
        ax.plot([r['step_time_s'] for r in dtl],
                [r['memory_bytes'] / 2**20 for r in dtl],
                color=COLOURS['dtl'],
                lw=1)
        ax.set_xlabel('time of one training step (s, median; ' +
                      ('wall)' if on_gpu else 'CPU time of the process)'))
        ax.set_ylabel('GPU peak of one training step (MB)'
                      if on_gpu else 'model state + saved for backward (MB)')
        ax.set_title(
            f'{fam}: {describe(fam)}\nbatch {r0["batch"]} at '
            f'{r0["size"][0]}x{r0["size"][1]}, '
            f'{"GPU" if on_gpu else "CPU"}',
            fontsize=9)
        ax.margins(0.15)
        ax.grid(alpha=0.3)
    legend = [
        Line2D([], [],
               color=c,
               marker='o',
               ls='-' if k == 'dtl' else '',
               label=label)
        for k, c, label in (('dtl', COLOURS['dtl'], 'DTL (line: its rows)'),
                            ('full', COLOURS['full'], 'full fine-tuning'),
                            ('petl', 'tab:blue', 'PETL baseline'),
                            ('fixed', COLOURS['fixed'], 'frozen Swin'))
    ]
    legend.append(
        Line2D([], [],
               ls='',
               label='+cp: backbone checkpointed; +sel: '
               'selectively; +heads: neck and heads too'))
    fig.legend(
        handles=legend,
        loc='lower center',
        ncol=2 if len(fams) == 1 else 5,
        fontsize=8)
    fig.tight_layout(rect=(0, 0.12 if len(fams) == 1 else 0.06, 1, 1))
    fig.savefig(path, dpi=100)


def main():
    args = parse_args()
    if args.worker:
        return run_worker(args)
    if args.replot:
        with open(osp.join(args.replot, 'results.json')) as f:
            results = json.load(f)
        return save_results(
            args.replot, tables(results), results,
            (lambda path: chart(results, path), 'frontier.png'))
    if not args.out:
        sys.exit('--out is required')
    if args.tiny and set(args.family) - set(PAPER_FAMILIES):
        sys.exit(f'--tiny swaps in a small Swin: only for the families '
                 f'{", ".join(PAPER_FAMILIES)}')
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for family in args.family:
        results[family] = []
        for variant in args.variants:
            print(f'[{family}] {variant} ...', flush=True)
            results[family].append(run_variant(args, family, variant))
            # after each configuration: a failed later one loses nothing
            with open(osp.join(args.out, 'results.json'), 'w') as f:
                json.dump(results, f, indent=1)
    save_results(
        args.out, tables(results), results, None if args.saved_only else
        (lambda path: chart(results, path), 'frontier.png'))


if __name__ == '__main__':
    main()
