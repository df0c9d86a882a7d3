"""Which config fits my GPU: the predicted training peak of shipped configs
at their shipped batch and input size, fp32 and AMP, checkpointing off and
on.

    python tools/benchmarks/gpu_fit.py [--families coco voc ade20k]
        [--variants full adaptformer dtlv2-ls] [--size-scale F] [--out DIR]

Each cell is ``dtl-mm memory``'s prediction (one training step measured on
this machine's CPU, dtl_mm.analysis.memory_estimate): the steady-state GPU
peak from the second step on, in GB (GiB). "+ cp": the backbone's
with_cp=True plus the neck and heads, and a DTL backbone's trunk
recomputed: what the lowmem configs set. GPU peaks measured on a card sit
beside the prediction where a row of docs/benchmarks/gpu_h200 has the same
configuration (those were measured in the first step, so the comparison
is of the first step's prediction). Writes results.md and results.json.
"""
import json
import os
import os.path as osp

import torch
from measure import (FAMILIES, PAPER_FAMILIES, ROOT, load_variant_config,
                     save_results, scaled, script_parser, variant_step_memory)

from dtl_mm.analysis.memory_estimate import (AMPNotMeasurable,
                                             predicted_gpu_peak,
                                             training_input_size)

GB = 1 << 30
SETTINGS = (('fp32', None, False), ('fp32 + cp', None, True),
            ('AMP', torch.bfloat16, False), ('AMP + cp', torch.bfloat16, True))


def measured_peaks(path):
    """{(family, variant, batch, (h, w)): first-step GPU peak bytes}."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        rows = [r for rows in json.load(f).values() for r in rows]
    return {(r['family'], r['variant'], r['batch'], tuple(r['size'])):
            r['peak_bytes']
            for r in rows}


def row(family, variant, size_scale, measured):
    cfg = load_variant_config(family, variant)
    batch = cfg.train_dataloader.batch_size
    size = tuple(scaled(training_input_size(cfg), size_scale))
    out = dict(family=family, variant=variant, batch=batch, size=list(size))
    # checkpointing on: as the lowmem configs, the trunk recomputed too
    lowmem = variant + '+cp+heads' + ('+trunk'
                                      if variant.startswith('dtl') else '')
    for name, amp, cp in SETTINGS:
        try:
            memory = variant_step_memory(family, lowmem if cp else variant,
                                         batch, size, amp)
        except AMPNotMeasurable:
            out[name] = None  # mmcv's CPU ops: fp32 only
            print(
                f'{family} {variant} {name}: not measurable on the CPU',
                flush=True)
            continue
        out[name] = predicted_gpu_peak(memory)[0]
        out[name + ' first step'] = predicted_gpu_peak(memory, False)[0]
        gpu = measured.get(
            (family, variant + ('+cp' if cp else ''), batch, size))
        if gpu is not None and amp is None and not cp:
            out[name + ' measured'] = gpu
        print(
            f'{family} {variant} {name}: {out[name] / GB:.1f} GB', flush=True)
    return out


def table(rows):
    head = ('| config | batch | input | ' +
            ' | '.join(name for name, _, _ in SETTINGS) + ' |')
    lines = [head, '|---|---|---|' + '---|' * len(SETTINGS)]
    for r in rows:
        cells = []
        for name, _, _ in SETTINGS:
            if r[name] is None:
                cells.append('n/a (mmcv\'s CPU ops: fp32 only)')
                continue
            cell = f'{r[name] / GB:.1f}'
            if name + ' measured' in r:
                cell += (f' (first step {r[name + " first step"] / GB:.1f}; '
                         f'H200 {r[name + " measured"] / GB:.1f})')
            cells.append(cell)
        config = FAMILIES[r['family']]['config'].format(r['variant'])
        lines.append(f'| {osp.basename(config)[:-3]} | {r["batch"]} | '
                     f'{r["size"][0]}x{r["size"][1]} | ' + ' | '.join(cells) +
                     ' |')
    return '\n'.join(lines)


def main(argv=None):
    p = script_parser(__doc__)
    p.add_argument(
        '--families',
        nargs='+',
        default=list(PAPER_FAMILIES),
        choices=list(FAMILIES))
    p.add_argument(
        '--variants', nargs='+', default=['full', 'adaptformer', 'dtlv2-ls'])
    p.add_argument('--size-scale', type=float, default=1.0)
    p.add_argument(
        '--measured',
        default=osp.join(ROOT, 'docs/benchmarks/gpu_h200/results.json'))
    p.add_argument('--out', default=osp.join(ROOT, 'docs/benchmarks/gpu_fit'))
    args = p.parse_args(argv)
    measured = measured_peaks(args.measured)
    # rows of an earlier, interrupted run of the same settings are kept
    done_file = osp.join(args.out, 'results.json')
    done = {}
    if osp.isfile(done_file):
        with open(done_file) as f:
            done = {(r['family'], r['variant'], r['size_scale']): r
                    for r in json.load(f) if 'size_scale' in r}
    rows = []
    for f in args.families:
        for v in args.variants:
            r = done.get((f, v, args.size_scale))
            if r is None:
                r = dict(
                    row(f, v, args.size_scale, measured),
                    size_scale=args.size_scale)
            rows.append(r)
            # after each row: an interrupted run loses nothing
            os.makedirs(args.out, exist_ok=True)
            with open(done_file, 'w') as fh:
                json.dump(rows, fh, indent=1)
    save_results(args.out, table(rows), rows)


if __name__ == '__main__':
    main()
