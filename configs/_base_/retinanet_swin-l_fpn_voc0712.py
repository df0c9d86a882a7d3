# RetinaNet + Swin-L on VOC07+12 trainval, tested on VOC07 test (mAP):
# 1000x600, RepeatDataset x3 over 4 epochs = 12 effective epochs, AdamW
# 1e-4 / 0.05. This is the `full` variant; configs/voc/ change the backbone.
_base_ = [
    'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
    './dtl_common.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedSwinTransformer',
        embed_dims={{_base_.swin_l.embed_dims}},
        depths={{_base_.swin_l.depths}},
        num_heads={{_base_.swin_l.num_heads}},
        window_size={{_base_.swin_l.window_size}},
        init_cfg={{_base_.swin_l.init_cfg}},
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.2,
        patch_norm=True,
        # only the stages FPN reads: an unused output norm would never get
        # a gradient (DDP with find_unused_parameters=False)
        out_indices=(1, 2, 3),
        with_cp=False),
    neck=dict(in_channels=[384, 768, 1536], start_level=0,
              num_outs=5))

optim_wrapper = dict(
    constructor='DTLOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={{_base_.swin_decay_exemptions}}),
    optimizer=dict(
        _delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999),
        weight_decay=0.05))
