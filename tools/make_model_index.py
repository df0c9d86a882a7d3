"""Write model-index.yml and the metafiles mim reads (configs/*/metafile.yml).

    python tools/make_model_index.py            # write them
    python tools/make_model_index.py --check    # exit 1 when out of date

One entry per shipped config. The results are the paper's (Tables 8, 9,
10 in dtl_mm/paper_results.py), marked as such, for the Swin each table
used; no entry names weights: none are published.
"""
import argparse
import glob
import os.path as osp
import re
import sys

import yaml

from dtl_mm import paper_results

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAPER = dict(
    URL='https://doi.org/10.1109/TPAMI.2025.3616318',
    Title='DTL: Parameter- and Memory-Efficient Disentangled Vision Learning')
# task -> (training data, [(mim task, dataset, {metric: index in the
# paper's accuracy entry or None for a scalar})])
TASKS = {
    'coco': ('COCO', [('Object Detection', 'COCO', {
        'box AP': 0
    }), ('Instance Segmentation', 'COCO', {
        'mask AP': 1
    })]),
    'voc': ('PASCAL VOC 07+12', [('Object Detection', 'PASCAL VOC 2007', {
        'AP': None
    })]),
    'ade20k': ('ADE20K', [('Semantic Segmentation', 'ADE20K', {
        'mIoU': None
    })]),
}
NAME = re.compile(
    r'_(swin-[bl]|deit-b|vit-b|dinov2-l|convnext-b)_([a-z0-9-]+?)'
    r'(_fpn|_160k|_mln)')
BACKBONES = {
    'swin-b': 'Swin-B',
    'swin-l': 'Swin-L',
    'deit-b': 'DeiT-B',
    'vit-b': 'ViT-B',
    'dinov2-l': 'DINOv2-L',
    'convnext-b': 'ConvNeXt-B'
}

# the trunk family a config name's backbone belongs to, as mim's
# Architecture metadata names it
ARCHITECTURES = (
    (re.compile(r'_swin-'), 'Swin Transformer'),
    (re.compile(r'_(deit|vit|dinov2|mmpretrain-vit)-'), 'Vision Transformer'),
    (re.compile(r'_convnext-'), 'ConvNeXt'),
)


def architectures(names):
    """The trunk families among ``names`` (config names), then DTL."""
    found = [
        arch for pattern, arch in ARCHITECTURES if any(
            pattern.search(n) for n in names)
    ]
    return found + ['DTL']


def task_of(folder, name):
    """The data set a config trains on: its folder's, or for the plain ViT
    configs (configs/vit/) the one its name ends with."""
    if folder in TASKS:
        return folder
    return next((t for t in TASKS if name.endswith(t) or f'_{t}-' in name),
                None)


def paper_entries(task, backbone, variant):
    """The model's Metadata additions and Results from the paper's table,
    when the paper measured this backbone on this task."""
    table = paper_results.TABLES[task]
    if table['swin'] != backbone or \
            variant not in paper_results.RESULTS[task]:
        return {}, []  # another Swin, or a set-up the paper has no row for
    params, memory, accuracy = paper_results.RESULTS[task][variant]
    source = (f'the paper ({table["table"]}, {table["model"]}, '
              f'{table["swin"]}); not reproduced by dtl_mm, no weights')
    meta = {
        'Paper Trainable Params (M)': params,
        'Paper Training Memory (GB)': memory,
        'Results Source': source
    }
    results = []
    for mim_task, dataset, metrics in TASKS[task][1]:
        results.append(
            dict(
                Task=mim_task,
                Dataset=dataset,
                Metrics={
                    f'{m} (paper)': accuracy if i is None else accuracy[i]
                    for m, i in metrics.items()
                }))
    return meta, results


def metafile(folder):
    configs = sorted(glob.glob(osp.join(ROOT, 'configs', folder, '*.py')))
    models = []
    for path in configs:
        name = osp.splitext(osp.basename(path))[0]
        entry = {
            'Name': name,
            'In Collection': 'DTL',
            'Config': f'configs/{folder}/{name}.py'
        }
        match = NAME.search(name)
        task = task_of(folder, name)
        if task and match and folder != 'demo':
            backbone, variant = BACKBONES[match.group(1)], match.group(2)
            meta, results = paper_entries(task, backbone, variant)
            entry['Metadata'] = {
                'Training Data': TASKS[task][0],
                'Backbone': backbone,
                'Variant': variant,
                **meta
            }
            if results:
                entry['Results'] = results
        else:  # the CPU demos on the toy shapes data
            entry['Metadata'] = {'Training Data': 'toy shapes (CPU demo)'}
        models.append(entry)
    collection = dict(
        Name='DTL',
        Metadata=dict(Architecture=architectures([m['Name'] for m in models])),
        Paper=PAPER,
        README='README.md')
    return dict(Collections=[collection], Models=models)


def outputs():
    """{relative path: YAML text}."""
    folders = sorted(
        osp.basename(d) for d in glob.glob(osp.join(ROOT, 'configs', '*'))
        if osp.isdir(d) and osp.basename(d) != '_base_')
    files = {
        f'configs/{f}/metafile.yml':
        yaml.safe_dump(metafile(f), sort_keys=False, allow_unicode=True)
        for f in folders
    }
    files['model-index.yml'] = yaml.safe_dump(
        dict(Import=sorted(p for p in files)), sort_keys=False)
    header = '# written by tools/make_model_index.py: do not edit\n'
    return {p: header + text for p, text in files.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        '--check',
        action='store_true',
        help='only compare, exit 1 when a file is out of date')
    args = p.parse_args()
    stale = []
    for rel, text in outputs().items():
        path = osp.join(ROOT, rel)
        old = open(path).read() if osp.isfile(path) else None
        if old == text:
            continue
        stale.append(rel)
        if not args.check:
            with open(path, 'w') as f:
                f.write(text)
    verb = 'out of date' if args.check else 'written'
    for rel in stale:
        print(f'{verb}: {rel}')
    return 1 if stale and args.check else 0


if __name__ == '__main__':
    sys.exit(main())
