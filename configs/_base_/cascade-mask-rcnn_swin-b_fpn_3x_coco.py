# Cascade Mask R-CNN + Swin-B on COCO: the Swin detection recipe the paper's
# baselines used (4conv1fc heads with GIoU, multi-scale 480-800 x 1333 with
# the crop branch, AdamW 1e-4 / 0.05, 36 epochs, steps at 27 and 33, AMP,
# 2 images x 8 GPUs). This is the `full` variant; the variant configs in
# configs/coco/ change only the backbone.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './dtl_common.py',
]
# checkpoints appear whole or not at all: a run killed mid-save leaves no
# truncated file under the final name (dtl_mm's atomic_local file backend)
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

# names starting with __ are helpers: they stay out of the final config
__bbox_head = dict(
    type='ConvFCBBoxHead',
    num_shared_convs=4,
    num_shared_fcs=1,
    in_channels=256,
    conv_out_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    reg_class_agnostic=False,
    reg_decoded_bbox=True,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedSwinTransformer',
        **swin_presets.SWIN_B,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False),
    neck=dict(in_channels=swin_presets.SWIN_B_CHANNELS),
    roi_head=dict(bbox_head=[
        dict(
            **__bbox_head,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=stds))
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                     [0.033, 0.033, 0.067, 0.067])
    ]))

# augmentation strategy of the Swin detection recipe (from DETR)
__ms_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
               (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
               (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=__ms_scales,
                    keep_ratio=True)
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=__ms_scales,
                    keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

__max_epochs = 36
train_cfg = dict(max_epochs=__max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=__max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    constructor='DTLOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys=swin_presets.DECAY_EXEMPTIONS),
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=16)
