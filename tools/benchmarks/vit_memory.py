"""Parameters, bytes saved for backward, memory and step time of the
plain-ViT variants: UperNet + DeiT-B/16 on ADE20K (configs/vit/).

    python tools/benchmarks/vit_memory.py --out docs/benchmarks/vit_cpu \
        [--batch 2] [--size 512 512] [--repeats 2] [--variants full fixed] \
        [--tiny]

Measured with measure.py's functions on one synthetic batch, each variant
in a fresh process. Memory is measure.py's ``memory_bytes``: the peak of
``max_memory_allocated`` on a GPU; on the CPU the model state (weights,
gradients, AdamW moments) plus the bytes saved for backward. Step time is
the process's CPU time on the CPU, wall time on a GPU (``step_time``).
``--tiny`` swaps DeiT-B for the demo configs' small ViT (a smoke test).
Writes results.md and results.json to --out.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

from measure import FAMILIES, measure, parse_variant, save_results

from dtl_mm.models.vit_presets import TINY_VIT, TINY_VIT_WIDTH

FAMILY = 'ade20k_vit'
FAMILIES[FAMILY] = dict(
    config='configs/vit/upernet_deit-b_{}_160k_ade20k-512x512.py',
    size=(512, 512))
# LoRA needs a Linear qkv projection; mmseg's ViT computes qkv inside
# torch's nn.MultiheadAttention, where a forward hook cannot reach it. No
# '+heads' rows: there is no ViT lowmem config to take the list from.
VARIANTS = ('full', 'fixed', 'dtlv2-ls', 'dtlv2-ls+sel', 'dtlv2-ls+cp')
# the small ViT of the demo configs, and its neck and heads' inputs
TINY_NECK = {
    'model.neck.in_channels': [TINY_VIT_WIDTH] * 4,
    'model.neck.out_channels': TINY_VIT_WIDTH,
    'model.decode_head.in_channels': [TINY_VIT_WIDTH] * 4,
    'model.auxiliary_head.in_channels': TINY_VIT_WIDTH,
}
TINY_RANK = 16  # the demo's; DeiT-B's rank 192 exceeds the small ViT


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='folder for the results')
    p.add_argument(
        '--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    p.add_argument('--device', default='cpu')
    # 2: UperNet's pooling branch normalises a 1x1 map over the batch
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--size', type=int, nargs=2, default=[512, 512])
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument(
        '--tiny',
        action='store_true',
        help='the demo configs\' small ViT instead of DeiT-B (smoke test)')
    p.add_argument('--worker', metavar='VARIANT', help=argparse.SUPPRESS)
    return p.parse_args()


def overrides(args):
    """backbone_overrides, model_overrides: the batch padded to --size
    (not the config's 512x512), and with --tiny the small ViT."""
    size = tuple(args.size)
    model = {'model.data_preprocessor.size': size}
    if not args.tiny:
        return None, model
    backbone = dict(TINY_VIT, img_size=size)
    if parse_variant(args.worker)[0].startswith('dtl'):
        backbone['rank'] = TINY_RANK
    return backbone, dict(model, **TINY_NECK)


def run_worker(args):
    backbone, model = overrides(args)
    row = measure(
        FAMILY,
        args.worker,
        args.device,
        args.batch,
        args.size,
        repeats=args.repeats,
        backbone_overrides=backbone,
        model_overrides=model,
        what=('params', 'saved', 'peak', 'time'))
    row['tiny'] = args.tiny
    print('RESULT ' + json.dumps(row), flush=True)


def run_variant(args, variant):
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--out', args.out, '--worker', variant,
        '--device', args.device, '--batch',
        str(args.batch), '--size', *map(str, args.size), '--repeats',
        str(args.repeats)
    ] + (['--tiny'] if args.tiny else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'{variant} failed:\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def table(rows, repeats):
    mb = 2**20
    full = next((r for r in rows if r['variant'] == 'full'), None)
    r0 = rows[0]
    memory = ('peak allocated'
              if 'peak_bytes' in r0 else 'model state + saved')
    out = [
        f'UperNet + {"small ViT" if r0["tiny"] else "DeiT-B/16"} '
        f'(MultiLevelNeck), ADE20K, batch {r0["batch"]} at '
        f'{r0["size"][0]}x{r0["size"][1]}, {r0["device"]}, step time '
        f'({r0["step_clock"]} time): median of {repeats} after one warm-up '
        f'step', '',
        '| variant | #p backbone + side (M) | #p trainable (M) | saved for '
        'backward backbone / side / neck+heads / total (MB) | saved ÷ full '
        f'| memory: {memory} (MB) | step (s) | step ÷ full |', '|---' * 8 + '|'
    ]
    for r in rows:

        def vs_full(key):
            return f'{r[key] / full[key]:.2f}' if full else '-'

        saved = ' / '.join(f'{r[k] / mb:.0f}'
                           for k in ('saved_backbone', 'saved_side',
                                     'saved_heads', 'saved_total'))
        out.append(
            f'| {r["variant"]} | {r["params_backbone_side"] / 1e6:.2f} | '
            f'{r["params_trainable"] / 1e6:.2f} | {saved} | '
            f'{vs_full("saved_total")} | {r["memory_bytes"] / mb:.0f} | '
            f'{r["step_time_s"]:.2f} | {vs_full("step_time_s")} |')
    return '\n'.join(out)


def main():
    args = parse_args()
    if args.worker:
        return run_worker(args)
    rows = []
    for variant in args.variants:
        print(f'measuring {variant} ...', flush=True)
        rows.append(run_variant(args, variant))
    save_results(args.out, table(rows, args.repeats), rows)


if __name__ == '__main__':
    main()
