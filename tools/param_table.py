"""Trainable backbone-side parameters of DTL vs the paper's #p column.

    python tools/param_table.py

Builds each DTLSwinTransformer (no weights needed) and counts the CSN.
"""
from dtl_mm.models import DTLSwinTransformer

SWIN = {
    'Swin-B': dict(embed_dims=128, depths=[2, 2, 18, 2],
                   num_heads=[4, 8, 16, 32]),
    'Swin-L': dict(embed_dims=192, depths=[2, 2, 18, 2],
                   num_heads=[6, 12, 24, 48]),
}
# task, backbone, d', paper #p (M) for DTLv1 / DTLv2 / DTLv2-LS
ROWS = [
    ('COCO (Table 8)', 'Swin-B', 256, (5.8, 3.9, 2.9)),
    ('VOC (Table 9)', 'Swin-L', 128, (4.4, 3.0, 2.2)),
    ('ADE20K (Table 10)', 'Swin-L', 192, (6.5, 5.7, 3.6)),
]
VARIANTS = ('dtlv1', 'dtlv2', 'dtlv2-ls')


def main():
    print('| task | backbone | d′ | DTLv1 | DTLv2 | DTLv2-LS |')
    print('|---|---|---|---|---|---|')
    for task, arch, rank, paper in ROWS:
        cells = []
        for variant, ref in zip(VARIANTS, paper):
            model = DTLSwinTransformer(variant=variant, rank=rank,
                                       **SWIN[arch])
            n = sum(p.numel() for p in model.parameters() if p.requires_grad)
            cells.append(f'{n / 1e6:.2f} M (paper {ref})')
        print(f'| {task} | {arch} | {rank} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
