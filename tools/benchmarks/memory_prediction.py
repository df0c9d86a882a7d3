"""The GPU-peak prediction of ``dtl-mm memory`` against measured GPU peaks:
calibrated on one family's rows, its error reported on the other's.

    python tools/benchmarks/memory_prediction.py \
        [--measured docs/benchmarks/gpu_h200/results.json] \
        [--rows voc:full voc:dtlv2-ls ...] [--size-scale F] [--out DIR]

For every measured row (a family, a variant, its batch and input size),
measures the same training step on this machine's CPU
(dtl_mm.analysis.memory_estimate) and predicts the first step's GPU peak,
which is what the measured rows report (the optimizer's moments do not
exist yet during the first step's forward and backward). The prediction
has one free number, the scale from CPU-counted bytes to GPU bytes; it is
fitted on the rows of one family and the error is reported on the rows of
the other (two folds), so no reported error comes from a row the fit saw.
The scale shipped in GPU_CALIBRATION is the fit on all rows; its band, the
largest held-back error rounded up to a whole percent.

--size-scale runs the same rows at a fraction of their size (a quick check
of the script; the errors then compare nothing). Writes results.md and
results.json.
"""
import json
import math
import os
import os.path as osp

from measure import (ROOT, save_results, scaled, script_parser,
                     variant_step_memory)

MB = 1 << 20
# a GPU row compares only when it ran the computation measured here: its
# own count of the bytes saved for backward must agree
SAME_COMPUTATION = 0.01


def fit_scale(rows):
    """The scale s minimising the relative squared error of
    ``fixed + s * x`` against ``measured`` over ``rows``."""
    num = sum(
        (r['x'] / r['measured']) * (r['measured'] - r['fixed']) / r['measured']
        for r in rows)
    den = sum((r['x'] / r['measured'])**2 for r in rows)
    return num / den


def predict(row, scale):
    return row['fixed'] + scale * row['x']


def measure_row(row, size_scale):
    size = scaled(row['size'], size_scale)
    memory = variant_step_memory(row['family'], row['variant'], row['batch'],
                                 size)
    return dict(
        family=row['family'],
        variant=row['variant'],
        batch=row['batch'],
        size=size,
        measured=row['peak_bytes'],
        measured_saved=row.get('saved_total'),
        saved=memory.saved,
        # the first step's peak: weights + inputs + the larger phase peak
        fixed=memory.weights + memory.inputs,
        x=max(memory.forward_backward_peak, memory.optimizer_peak),
        memory=memory.as_dict())


def comparable(row):
    """Whether the GPU row ran what was measured here (the same bytes saved
    for backward); rows measured without that count are taken as they
    are."""
    gpu = row.get('measured_saved')
    return gpu is None or abs(row['saved'] / gpu - 1) <= SAME_COMPUTATION


def cross_validate(rows):
    """Each comparable row predicted with the scale fitted on the other
    families' comparable rows; the others are predicted at the scale of
    all comparable rows and left out of the error."""
    for r in rows:
        r['comparable'] = comparable(r)
    used = [r for r in rows if r['comparable']]
    families = sorted({r['family'] for r in used})
    scale = fit_scale(used) if used else 1.0
    for r in rows:
        if not r['comparable']:
            r['scale_held_out'] = scale
            r['predicted_raw'] = predict(r, 1.0)
            r['predicted'] = predict(r, scale)
            r['error'] = r['predicted'] / r['measured'] - 1
    rows = used
    for r in rows:
        others = [o for o in rows if o['family'] != r['family']]
        r['scale_held_out'] = fit_scale(others) if others else 1.0
        r['predicted_raw'] = predict(r, 1.0)
        r['predicted'] = predict(r, r['scale_held_out'])
        r['error'] = r['predicted'] / r['measured'] - 1
    band = math.ceil(max(abs(r['error']) for r in rows) * 100) / 100 \
        if len(families) > 1 else None
    if not used:
        scale = None
    return scale, band


def table(rows, scale, band, measured_file):
    lines = [
        f'GPU peaks: {measured_file}. Predicted: one step on the CPU '
        f'(`dtl-mm memory`), first-step peak; "held out": the scale fitted '
        f'on the other family\'s rows.', '',
        '| family | variant | batch | size | measured peak (MB) | '
        'predicted, scale 1 (MB) | scale fitted on the other family | '
        'predicted, held out (MB) | error | saved for backward GPU / CPU '
        '(MB) |', '|---|---|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        saved_gpu = '' if r['measured_saved'] is None else \
            f'{r["measured_saved"] / MB:,.0f}'
        error = f'{r["error"]:+.1%}' if r['comparable'] else \
            f'({r["error"]:+.1%}: not compared, other code)'
        lines.append(
            f'| {r["family"]} | {r["variant"]} | {r["batch"]} | '
            f'{r["size"][0]}x{r["size"][1]} | {r["measured"] / MB:,.0f} | '
            f'{r["predicted_raw"] / MB:,.0f} | {r["scale_held_out"]:.3f} | '
            f'{r["predicted"] / MB:,.0f} | {error} | '
            f'{saved_gpu} / {r["saved"] / MB:,.0f} |')
    worst = max((abs(r['error']) for r in rows if r['comparable']),
                default=float('nan'))
    other = [
        f'{r["family"]} {r["variant"]}' for r in rows if not r['comparable']
    ]
    if other:
        lines += [
            '', 'Not compared: ' + ', '.join(other) + '. The GPU counted '
            'other bytes saved for backward than this code keeps: those '
            'rows ran an earlier version of the checkpointing code, so '
            'they cannot check a prediction of this one.'
        ]
    lines += [
        '', f'Largest held-out error: {worst:.1%}. Scale fitted on all '
        f'rows: {scale if scale is None else round(scale, 3)}' +
        (f'; band ±{band:.0%}' if band is not None else '') + '.'
    ]
    return '\n'.join(lines)


def main(argv=None):
    p = script_parser(__doc__)
    p.add_argument(
        '--measured',
        default=osp.join(ROOT, 'docs/benchmarks/gpu_h200/results.json'))
    p.add_argument(
        '--rows',
        nargs='+',
        metavar='FAMILY:VARIANT',
        help='only these rows (default: all)')
    p.add_argument('--size-scale', type=float, default=1.0)
    p.add_argument(
        '--reuse',
        metavar='RESULTS_JSON',
        help='the CPU measurements of an earlier run (its results.json): '
        'fit and report again without measuring')
    p.add_argument(
        '--out', default=osp.join(ROOT, 'docs/benchmarks/memory_prediction'))
    args = p.parse_args(argv)
    with open(args.measured) as f:
        measured = [r for rows in json.load(f).values() for r in rows]
    wanted = set(args.rows or [])
    measured = [
        r for r in measured
        if not wanted or f'{r["family"]}:{r["variant"]}' in wanted
    ]
    no_peak = [r for r in measured if 'peak_bytes' not in r]
    if no_peak:  # measured on a CPU: nothing to compare with
        print(
            f'{len(no_peak)} row(s) of {args.measured} have no GPU peak '
            f'(measured on a CPU); left out',
            flush=True)
        measured = [r for r in measured if 'peak_bytes' in r]
    if not measured:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'results.md'), 'w') as f:
            f.write(f'No GPU peak in {args.measured}: nothing to compare.\n')
        print('no GPU peak to compare with')
        return
    if wanted - {f'{r["family"]}:{r["variant"]}' for r in measured}:
        p.error(f'--rows: not measured in {args.measured}: ' + ', '.join(
            sorted(wanted -
                   {f'{r["family"]}:{r["variant"]}'
                    for r in measured})))
    rows = []
    if args.reuse:
        with open(args.reuse) as f:
            done = {(r['family'], r['variant']): r
                    for r in json.load(f)['rows']}
    for r in measured:
        if args.reuse:
            rows.append(done[r['family'], r['variant']])
            continue
        rows.append(measure_row(r, args.size_scale))
        print(
            f'{r["family"]} {r["variant"]}: measured '
            f'{r["peak_bytes"] / MB:,.0f} MB, CPU-counted '
            f'{predict(rows[-1], 1.0) / MB:,.0f} MB',
            flush=True)
    scale, band = cross_validate(rows)
    results = dict(
        measured_file=osp.relpath(args.measured, ROOT),
        size_scale=args.size_scale,
        scale=scale,
        band=band,
        rows=rows)
    save_results(args.out, table(rows, scale, band, results['measured_file']),
                 results)


if __name__ == '__main__':
    main()
