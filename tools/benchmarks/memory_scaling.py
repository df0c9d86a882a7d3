"""How each method's training memory grows with the image and the batch:
saved-for-backward bytes and the predicted GPU peak at four input sizes up
to the paper's, at batch 1, 2 and 4.

    python tools/benchmarks/memory_scaling.py --family voc [--out DIR]
        [--fractions 0.25 0.5 0.75 1.0] [--methods full dtlv2-ls ...]

Each (method, size) is one training step at batch 2 measured on this
machine's CPU (dtl_mm.analysis.memory_estimate); batch 1 and 4 follow from
it (what forward and backward keep grows with the batch, the model state
does not: memory_estimate.at_batch). Writes results.md, results.json and
scaling.png (predicted peak against input pixels, one line per method and
batch).
"""
from measure import (FAMILIES, ROOT, describe, save_results, scaled,
                     script_parser, variant_step_memory)

from dtl_mm.analysis.memory_estimate import at_batch, predicted_gpu_peak

METHODS = ('full', 'full+cp+heads', 'adaptformer+cp', 'dtlv2-ls',
           'dtlv2-ls+cp+heads+trunk')
BATCHES = (1, 2, 4)
MEASURED_BATCH = 2  # UperNet's pooling branch needs two images to train
GB = 1 << 30


def measure_method(family, method, size):
    m = variant_step_memory(family, method, MEASURED_BATCH, size)
    out = {}
    for b in BATCHES:
        mb = at_batch(m, MEASURED_BATCH, b)
        out[b] = dict(saved=mb.saved, peak=predicted_gpu_peak(mb)[0])
    return out


def table(family, rows):
    lines = [
        f'### {family}: {describe(family)}; predicted GPU peak (GB) / '
        f'saved for backward (GB), batch 1 / 2 / 4', '',
        '| method | input | ' + ' | '.join(f'batch {b}'
                                           for b in BATCHES) + ' |',
        '|---|---|' + '---|' * len(BATCHES)
    ]
    for r in rows:
        cells = [
            f'{r["batches"][b]["peak"] / GB:.2f} / '
            f'{r["batches"][b]["saved"] / GB:.2f}' for b in BATCHES
        ]
        lines.append(f'| {r["method"]} | {r["size"][0]}x{r["size"][1]} | ' +
                     ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def chart(family, rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = {1: '-', 2: '--', 4: ':'}
    for i, method in enumerate(dict.fromkeys(r['method'] for r in rows)):
        mine = [r for r in rows if r['method'] == method]
        pixels = [r['size'][0] * r['size'][1] / 1e6 for r in mine]
        for b in BATCHES:
            ax.plot(
                pixels, [r['batches'][b]['peak'] / GB for r in mine],
                styles[b],
                color=f'C{i}',
                marker='o',
                ms=3,
                label=f'{method}, batch {b}')
    ax.set_xlabel('input pixels (millions)')
    ax.set_ylabel('predicted GPU peak of a training step (GB)')
    ax.set_title(f'{family}: {describe(family)}', fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    p = script_parser(__doc__)
    p.add_argument('--family', default='voc', choices=list(FAMILIES))
    p.add_argument(
        '--fractions',
        type=float,
        nargs='+',
        default=[0.25, 0.5, 0.75, 1.0],
        help="of the paper's input size")
    p.add_argument('--methods', nargs='+', default=list(METHODS))
    p.add_argument('--out')
    args = p.parse_args(argv)
    out = args.out or f'{ROOT}/docs/benchmarks/memory_scaling_{args.family}'
    rows = []
    for method in args.methods:
        for f in args.fractions:
            size = scaled(FAMILIES[args.family]['size'], f)
            rows.append(
                dict(
                    method=method,
                    size=size,
                    batches=measure_method(args.family, method, size)))
            print(
                f'{method} {size}: '
                f'{rows[-1]["batches"][2]["peak"] / GB:.2f} GB at batch 2',
                flush=True)
    save_results(out, table(args.family, rows), rows,
                 (lambda path: chart(args.family, rows, path), 'scaling.png'))


if __name__ == '__main__':
    main()
