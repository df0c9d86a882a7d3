# The VOC DTLv2-LS config, shrunk for CPU on the toy shapes data in VOC
# layout (python tools/make_toy_data.py data/toy): a small Swin, 128x160
# images, narrower FPN/head, 3 classes, a short schedule.
_base_ = '../voc/retinanet_swin-l_dtlv2-ls_fpn_voc0712.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

data_root = 'data/toy/voc/VOCdevkit/'
# names starting with __ are helpers: they stay out of the final config
__classes = ('square', 'circle', 'triangle')
__width = 64

# no pretrained tiny Swin exists: training on a random one is intended
allow_random_trunk = True
# a fixed seed: the same command gives the same model and metric on one
# machine (mmengine draws a new seed per run otherwise)
randomness = dict(seed=0)
model = dict(
    backbone=dict(**swin_presets.TINY_SWIN, rank=16,
                  init_cfg=None),  # no pretrained tiny Swin exists
    neck=dict(
        in_channels=swin_presets.TINY_SWIN_CHANNELS[1:], out_channels=__width),
    bbox_head=dict(
        num_classes=len(__classes),
        in_channels=__width,
        feat_channels=__width,
        stacked_convs=2))

__scale = (160, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=__scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=__scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
__voc_trainval = [
    dict(
        type='VOCDataset',
        data_root=data_root,
        metainfo=dict(classes=__classes),
        ann_file=f'{year}/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root=f'{year}/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8, bbox_min_size=4),
        pipeline=train_pipeline) for year in ('VOC2007', 'VOC2012')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(times=1, dataset=dict(datasets=__voc_trainval)))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=__classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[6],
        gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=max_epochs))
