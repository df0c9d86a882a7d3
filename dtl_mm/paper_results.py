"""The paper's reported numbers (Tables 8, 9 and 10), for comparison only.

Full training on the real data sets, on the authors' cluster. The benchmark
scripts print them beside our measurements, ``tools/param_table.py`` beside
our parameter counts, and the tests check our counts against them. Nothing
in the package depends on them.
"""
VARIANTS = ('full', 'fixed', 'lora', 'adapter', 'adaptformer', 'dtlv1',
            'dtlv2', 'dtlv2-ls')

# task -> the paper's table, its detector / segmentor and Swin, and the input
# size (H, W) the table was measured at
TABLES = {
    'coco':
    dict(
        table='Table 8',
        model='Cascade Mask R-CNN',
        swin='Swin-B',
        size=(800, 1333)),
    'voc':
    dict(table='Table 9', model='RetinaNet', swin='Swin-L', size=(600, 1000)),
    'ade20k':
    dict(table='Table 10', model='UperNet', swin='Swin-L', size=(512, 512)),
}

# #p: trainable backbone-side parameters (M); for `full`, the whole Swin
PARAMS_M = {
    'coco':
    dict(
        full=86.8,
        fixed=0,
        lora=3.1,
        adapter=3.1,
        adaptformer=3.1,
        dtlv1=5.8,
        dtlv2=3.9,
        **{'dtlv2-ls': 2.9}),
    'voc':
    dict(
        full=195.0,
        fixed=0,
        lora=4.6,
        adapter=4.7,
        adaptformer=4.6,
        dtlv1=4.4,
        dtlv2=3.0,
        **{'dtlv2-ls': 2.2}),
    'ade20k':
    dict(
        full=195.0,
        fixed=0,
        lora=4.6,
        adapter=4.7,
        adaptformer=4.6,
        dtlv1=6.5,
        dtlv2=5.7,
        **{'dtlv2-ls': 3.6}),
}

# #m: GPU memory of training (GB)
MEMORY_GB = {
    'coco':
    dict(
        full=69.1,
        fixed=17.2,
        lora=55.0,
        adapter=54.8,
        adaptformer=53.4,
        dtlv1=31.7,
        dtlv2=35.0,
        **{'dtlv2-ls': 35.2}),
    'voc':
    dict(
        full=11.6,
        fixed=2.2,
        lora=7.4,
        adapter=7.4,
        adaptformer=7.0,
        dtlv1=3.9,
        dtlv2=4.2,
        **{'dtlv2-ls': 4.2}),
    'ade20k':
    dict(
        full=87.8,
        fixed=33.0,
        lora=55.7,
        adapter=56.1,
        adaptformer=52.5,
        dtlv1=41.6,
        dtlv2=43.1,
        **{'dtlv2-ls': 43.2}),
}

# accuracy: COCO (box AP, mask AP), VOC07 test AP, ADE20K val mIoU
ACCURACY = {
    'coco':
    dict(
        full=(52.4, 45.3),
        fixed=(48.3, 42.0),
        lora=(50.4, 43.9),
        adapter=(52.1, 45.0),
        adaptformer=(52.0, 45.1),
        dtlv1=(52.0, 45.1),
        dtlv2=(52.7, 45.6),
        **{'dtlv2-ls': (52.6, 45.7)}),
    'voc':
    dict(
        full=83.6,
        fixed=83.6,
        lora=85.6,
        adapter=86.6,
        adaptformer=86.6,
        dtlv1=86.2,
        dtlv2=87.1,
        **{'dtlv2-ls': 87.0}),
    'ade20k':
    dict(
        full=50.4,
        fixed=46.4,
        lora=49.7,
        adapter=50.2,
        adaptformer=50.3,
        dtlv1=50.3,
        dtlv2=50.7,
        **{'dtlv2-ls': 50.6}),
}


def describe(task: str) -> str:
    """'Table 8 (Cascade Mask R-CNN, Swin-B)'."""
    t = TABLES[task]
    return f"{t['table']} ({t['model']}, {t['swin']})"
