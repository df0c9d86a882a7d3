# The ADE20K DTLv2-LS config, shrunk for CPU on the toy shapes data in
# ADE20K layout (python tools/make_toy_data.py data/toy): a small Swin,
# 128x128 crops, narrower heads, a short schedule. The toy labels use the
# values of ADE20K's floor/box/ball/signboard, so the 150 classes stay.
_base_ = '../ade20k/upernet_swin-l_dtlv2-ls_160k_ade20k-512x512.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

data_root = 'data/toy/ade20k/ADEChallengeData2016'
crop_size = (128, 128)

# no pretrained tiny Swin exists: training on a random one is intended
allow_random_trunk = True
# a fixed seed: the same command gives the same model and metric on one
# machine (mmengine draws a new seed per run otherwise)
randomness = dict(seed=0)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(**swin_presets.TINY_SWIN, rank=16,
                  init_cfg=None),  # no pretrained tiny Swin exists
    decode_head=dict(in_channels=swin_presets.TINY_SWIN_CHANNELS, channels=64),
    auxiliary_head=dict(
        in_channels=swin_presets.TINY_SWIN_CHANNELS[2], channels=32))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(160, 128),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

__max_iters = 120
train_cfg = dict(max_iters=__max_iters, val_interval=__max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=20,
        end=__max_iters,
        by_epoch=False),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=__max_iters))
