"""Count trainable / frozen parameters: of your configs, or of the shipped
DTL configs against the paper's #p column.

    python tools/param_table.py CONFIG [CONFIG ...]   # per model part
    python tools/param_table.py                       # DTL vs the paper

With configs, builds each config's model (no weights are read) and prints
trainable / frozen parameters per part (backbone, side network, neck,
heads). Without, builds each DTLSwinTransformer of the shipped configs and
prints a Markdown table beside the paper's numbers, then the same for the
plain ViT-B/16 (DTLVisionTransformer, 12 blocks, M = 7) at the paper's ViT
d' (2) and at the d' of the configs in configs/vit/, then Swin-B and
ConvNeXt-B on the paper's classification setting (d' = 4, with Table 12's
sparsified DTLv1).
"""
import argparse
import importlib.util

from dtl_mm import paper_results
from dtl_mm.models import DTLConvNeXt, DTLSwinTransformer, DTLVisionTransformer
from dtl_mm.models.convnext_presets import CONVNEXT_B
from dtl_mm.models.csn_layout import VARIANTS
from dtl_mm.models.swin_presets import SWIN_B, SWIN_L
from dtl_mm.models.vit_presets import DEIT_B
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.param_count import count_parameters, format_counts

# no pretrained weights: only the parameter counts are needed
SWIN = {
    'Swin-B': dict(SWIN_B, init_cfg=None),
    'Swin-L': dict(SWIN_L, init_cfg=None),
}
# task, its name in the table, d' of the shipped DTL configs
ROWS = [('coco', 'COCO', 256), ('voc', 'VOC', 128), ('ade20k', 'ADE20K', 192)]
# d' of the ViT rows: the paper's ViT-B/16 setting, the ADE20K and COCO
# configs
VIT_RANKS = ((paper_results.VIT_B16_RANK, "the paper's ViT-B/16 d'"),
             (192, 'configs/vit ADE20K'), (256, 'configs/vit COCO'))


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def paper_table():
    print('| task | backbone | d′ | DTLv1 | DTLv2 | DTLv2-LS |')
    print('|---|---|---|---|---|---|')
    for task, name, rank in ROWS:
        table, arch = (
            paper_results.TABLES[task][k] for k in ('table', 'swin'))
        cells = []
        for variant in VARIANTS:
            ref = paper_results.PARAMS_M[task][variant]
            model = DTLSwinTransformer(
                variant=variant, rank=rank, **SWIN[arch])
            cells.append(f'{trainable(model) / 1e6:.2f} M (paper {ref})')
        print(f'| {name} ({table}) | {arch} | {rank} | ' + ' | '.join(cells) +
              ' |')
    print('\n| plain ViT-B/16 | d′ | DTLv1 | DTLv2 | DTLv2-LS |')
    print('|---|---|---|---|---|')
    vit = dict(DEIT_B, init_cfg=None)
    for rank, what in VIT_RANKS:
        cells = []
        for v in VARIANTS:
            n = trainable(DTLVisionTransformer(variant=v, rank=rank, **vit))
            paper = paper_results.VIT_B16_PARAMS_M[v] \
                if rank == paper_results.VIT_B16_RANK else None
            cells.append(f'{n:,}' + (f' (paper {paper})' if paper else ''))
        print(f'| {what} | {rank} | ' + ' | '.join(cells) + ' |')
    hierarchical_table()


def hierarchical_table():
    """Swin-B and ConvNeXt-B (mmpretrain's) at the paper's VTAB setting."""
    columns = paper_results.HIERARCHICAL_VTAB_OPTIONS
    rank = paper_results.HIERARCHICAL_VTAB_RANK
    print(f"\n| VTAB (Tables 5, 12), d′ = {rank} | " + ' | '.join(columns) +
          ' |')
    print('|---' * (len(columns) + 1) + '|')
    trunks = (('Swin-B', DTLSwinTransformer, SWIN_B),
              ('ConvNeXt-B', DTLConvNeXt, CONVNEXT_B))
    for name, cls, arch in trunks:
        if cls is DTLConvNeXt and not importlib.util.find_spec('mmpretrain'):
            print(f'| {name} | (needs mmpretrain, which this environment '
                  f'lacks) |')
            continue
        cells = []
        for column, options in columns.items():
            model = cls(rank=rank, **options, **dict(arch, init_cfg=None))
            paper = paper_results.HIERARCHICAL_VTAB_PARAMS_M[name][column]
            cells.append(f'{trainable(model):,} (paper {paper:.2f} M)')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


def config_tables(paths):
    from dtl_mm.apis.runner_setup import build_model, read_config
    for path in paths:
        model = build_model(read_config(path))
        print(f'{path}:\n{format_counts(count_parameters(model))}\n')


def main():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument(
        'configs',
        nargs='*',
        type=config_arg,
        metavar='CONFIG',
        help='config files (or shipped config names); none: the DTL '
        'table against the paper')
    args = p.parse_args()
    if args.configs:
        config_tables(args.configs)
    else:
        paper_table()


if __name__ == '__main__':
    main()
