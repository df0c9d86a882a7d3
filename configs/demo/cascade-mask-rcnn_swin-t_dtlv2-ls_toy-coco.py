# The COCO DTLv2-LS config, shrunk for a CPU demo on the toy shapes data
# (python tools/make_toy_data.py data/toy): a small Swin, 128x160 images,
# narrower heads, 3 classes, a short schedule. Everything else - model type,
# losses, optimizer, dataset and metric classes - is the real recipe's.
_base_ = '../coco/cascade-mask-rcnn_swin-b_dtlv2-ls_fpn_3x_coco.py'
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

data_root = 'data/toy/coco/'
# names starting with __ are helpers: they stay out of the final config
__classes = ('square', 'circle', 'triangle')
__width = 64  # FPN / RoI head width (256 in the real config)

# no pretrained tiny Swin exists: training on a random one is intended
allow_random_trunk = True
# a fixed seed: the same command gives the same model and metric on one
# machine (mmengine draws a new seed per run otherwise)
randomness = dict(seed=0)
model = dict(
    backbone=dict(**swin_presets.TINY_SWIN, rank=16,
                  init_cfg=None),  # no pretrained tiny Swin exists
    neck=dict(
        in_channels=swin_presets.TINY_SWIN_CHANNELS, out_channels=__width),
    rpn_head=dict(in_channels=__width, feat_channels=__width),
    roi_head=dict(
        # a fixed 2x2 sampling grid: CPU RoIAlign dominates the step time
        bbox_roi_extractor=dict(
            out_channels=__width, roi_layer=dict(sampling_ratio=2)),
        mask_roi_extractor=dict(
            out_channels=__width, roi_layer=dict(sampling_ratio=2)),
        bbox_head=[
            dict(
                type='ConvFCBBoxHead',
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=__width,
                conv_out_channels=__width,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=len(__classes),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='BN'),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                loss_cls=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_head=dict(
            in_channels=__width,
            conv_out_channels=__width,
            num_classes=len(__classes))),
    # a handful of shapes per image needs few proposals, and few sampled
    # RoIs per stage (512 in the recipe): the RoI heads dominate a CPU step
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=[
            dict(stage, sampler=dict(stage.sampler, num=128))
            for stage in _base_.model.train_cfg.rcnn
        ]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200)))

__scale = (160, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=__scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=__scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=__classes),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=__classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

__max_epochs = 12
train_cfg = dict(max_epochs=__max_epochs, val_interval=__max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(
        type='MultiStepLR',
        begin=0,
        end=__max_epochs,
        by_epoch=True,
        milestones=[9, 11],
        gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=1e-3))
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=__max_epochs))
