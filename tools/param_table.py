"""Trainable backbone-side parameters of DTL vs the paper's #p column.

    python tools/param_table.py

Builds each DTLSwinTransformer (no weights needed) and counts the CSN.
"""
import argparse

from dtl_mm.models import DTLSwinTransformer
from dtl_mm.swin_presets import SWIN_B, SWIN_L

# no pretrained weights: only the parameter counts are needed
SWIN = {
    'Swin-B': dict(SWIN_B, init_cfg=None),
    'Swin-L': dict(SWIN_L, init_cfg=None),
}
# task, backbone, d', paper #p (M) for DTLv1 / DTLv2 / DTLv2-LS
ROWS = [
    ('COCO (Table 8)', 'Swin-B', 256, (5.8, 3.9, 2.9)),
    ('VOC (Table 9)', 'Swin-L', 128, (4.4, 3.0, 2.2)),
    ('ADE20K (Table 10)', 'Swin-L', 192, (6.5, 5.7, 3.6)),
]
VARIANTS = ('dtlv1', 'dtlv2', 'dtlv2-ls')


def main():
    argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='Prints a Markdown table; takes no arguments.').parse_args()
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
