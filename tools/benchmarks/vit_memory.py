"""Parameters, bytes saved for backward, peak memory and step time of the
plain-ViT variants: UperNet + DeiT-B/16 on ADE20K (configs/vit/).

    python tools/benchmarks/vit_memory.py --out docs/benchmarks/vit_cpu \
        [--batch 2] [--size 512 512] [--repeats 2] [--variants full fixed]

Measured with measure.py's functions on one synthetic batch, each variant
in a fresh process (the CPU peak is the process's resident set size).
Writes results.md and results.json to --out.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

from measure import FAMILIES, measure, save_results

FAMILY = 'ade20k_vit'
FAMILIES[FAMILY] = dict(
    config='configs/vit/upernet_deit-b_{}_160k_ade20k-512x512.py',
    size=(512, 512))
# LoRA needs a Linear qkv projection; mmseg's ViT computes qkv inside
# torch's nn.MultiheadAttention, where a forward hook cannot reach it
VARIANTS = ('full', 'fixed', 'dtlv2-ls', 'dtlv2-ls+cp')


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
    p.add_argument('--worker', metavar='VARIANT', help=argparse.SUPPRESS)
    return p.parse_args()


def run_worker(args):
    row = measure(
        FAMILY,
        args.worker,
        args.device,
        args.batch,
        args.size,
        repeats=args.repeats,
        what=('params', 'saved', 'peak', 'time'))
    print('RESULT ' + json.dumps(row), flush=True)


def run_variant(args, variant):
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--out', args.out, '--worker', variant,
        '--device', args.device, '--batch',
        str(args.batch), '--size', *map(str, args.size), '--repeats',
        str(args.repeats)
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'{variant} failed:\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def table(rows, repeats):
    mb = 2**20
    full = next((r for r in rows if r['variant'] == 'full'), None)
    r0 = rows[0]
    out = [
        f'UperNet + DeiT-B/16 (MultiLevelNeck), ADE20K, batch {r0["batch"]}'
        f' at {r0["size"][0]}x{r0["size"][1]}, {r0["device"]}, step time: '
        f'median of {repeats} after one warm-up step', '',
        '| variant | #p backbone + side (M) | #p trainable (M) | saved for '
        'backward backbone / rest / total (MB) | saved ÷ full | peak (MB) | '
        'rise in step (MB) | step (s) | step ÷ full |', '|---' * 9 + '|'
    ]
    for r in rows:

        def vs_full(key):
            return f'{r[key] / full[key]:.2f}' if full else '-'

        out.append(
            f'| {r["variant"]} | {r["params_backbone_side"] / 1e6:.2f} | '
            f'{r["params_trainable"] / 1e6:.2f} | '
            f'{r["saved_backbone"] / mb:.0f} / {r["saved_rest"] / mb:.0f} / '
            f'{r["saved_total"] / mb:.0f} | {vs_full("saved_total")} | '
            f'{r["peak_bytes"] / mb:.0f} | {r["peak_rise_bytes"] / mb:.0f} | '
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
