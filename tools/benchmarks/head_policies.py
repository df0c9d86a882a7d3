"""Which checkpointing of the neck and heads keeps least, by bytes saved for
backward and by predicted GPU peak: COCO Cascade Mask R-CNN, Swin-B.

    python tools/benchmarks/head_policies.py [--size H W] [--batch N]
        [--out DIR]

Policies: the shipped lowmem one (``checkpointed_parts = ['neck',
'rpn_head']`` and the checkpointed cascade RoI head: each stage's RoI
extractor and head in one region) against a plain checkpoint around the
neck, the RPN head and each ``roi_head.bbox_head.i`` /
``roi_head.mask_head.i`` separately (the RoI features then are each
region's kept input), for DTLv2-LS (trunk recomputed and kept), full
fine-tuning and AdaptFormer, all with the backbone's ``with_cp=True``.
Each row is one training step measured on this machine's CPU
(dtl_mm.analysis.memory_estimate); "peak" is the predicted steady GPU
peak. Writes results.md and results.json.
"""
from measure import (ROOT, load_variant_config, save_results, scaled,
                     script_parser)

from dtl_mm.analysis.memory_estimate import (measure_step_memory,
                                             predicted_gpu_peak)
from dtl_mm.models.recompute import request_checkpointing

MB = 1 << 20
SHIPPED = ['neck', 'rpn_head', 'roi_head']
PER_MODULE = ['neck', 'rpn_head'] + [
    f'roi_head.{head}.{i}' for head in ('bbox_head', 'mask_head')
    for i in range(3)
]
# (row, variant, checkpointed parts, the trunk recomputed)
ROWS = [
    ('DTLv2-LS, shipped lowmem', 'dtlv2-ls+cp', SHIPPED, True),
    ('DTLv2-LS, per module', 'dtlv2-ls+cp', PER_MODULE, True),
    ('DTLv2-LS, per module, trunk kept', 'dtlv2-ls+cp', PER_MODULE, False),
    ('full, shipped policy', 'full+cp', SHIPPED, None),
    ('full, per module', 'full+cp', PER_MODULE, None),
    ('AdaptFormer, per module', 'adaptformer+cp', PER_MODULE, None),
]


def main(argv=None):
    p = script_parser(__doc__)
    p.add_argument('--size', type=int, nargs=2, default=(800, 1344))
    p.add_argument('--size-scale', type=float, default=1.0)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument(
        '--rows',
        nargs='+',
        choices=[r[0] for r in ROWS],
        help='only these rows (default: all)')
    p.add_argument('--out', default=f'{ROOT}/docs/benchmarks/head_policies')
    args = p.parse_args(argv)
    size = scaled(args.size, args.size_scale)
    rows = []
    for name, variant, parts, trunk in ROWS:
        if args.rows and name not in args.rows:
            continue
        cfg = load_variant_config('coco', variant)
        request_checkpointing(cfg, parts)
        if trunk is not None:
            cfg.model.backbone.recompute_trunk = trunk
        m = measure_step_memory(cfg, args.batch, size)
        rows.append(
            dict(
                name=name,
                saved=m.saved,
                peak=predicted_gpu_peak(m)[0],
                memory=m.as_dict()))
        print(f'{name}: saved {m.saved / MB:.0f} MB', flush=True)
    best_full = min((r['peak'] for r in rows if r['name'].startswith('full')),
                    default=float('nan'))
    lines = [
        f'COCO Cascade Mask R-CNN Swin-B, batch {args.batch}, '
        f'{size[0]}x{size[1]}; predicted GPU peak from the second step on', '',
        '| policy | saved backbone / side / heads = total (MB) | '
        'predicted peak (MB) | ÷ best full |', '|---|---|---|---|'
    ]
    for r in rows:
        m = r['memory']
        lines.append(
            f'| {r["name"]} | {m["saved_backbone"] / MB:.0f} / '
            f'{m["saved_side"] / MB:.0f} / {m["saved_heads"] / MB:.0f} = '
            f'{r["saved"] / MB:.0f} | {r["peak"] / MB:,.0f} | '
            f'{r["peak"] / best_full:.2f} |')
    save_results(args.out, '\n'.join(lines), rows)


if __name__ == '__main__':
    main()
