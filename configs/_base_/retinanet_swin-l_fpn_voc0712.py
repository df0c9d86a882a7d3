# RetinaNet + Swin-L on VOC07+12 trainval, tested on VOC07 test (mAP):
# 1000x600, RepeatDataset x3 over 4 epochs = 12 effective epochs, AdamW
# 1e-4 / 0.05. This is the `full` variant; configs/voc/ change the backbone.
_base_ = [
    'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
    './dtl_common.py',
]
# checkpoints appear whole or not at all: a run killed mid-save leaves no
# truncated file under the final name (dtl_mm's atomic_local file backend)
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))
from dtl_mm.models import swin_presets  # noqa: E402 isort:skip

model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedSwinTransformer',
        **swin_presets.SWIN_L,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.2,
        patch_norm=True,
        # only the stages FPN reads: an unused output norm would never get
        # a gradient (DDP with find_unused_parameters=False)
        out_indices=(1, 2, 3),
        with_cp=False),
    neck=dict(
        in_channels=swin_presets.SWIN_L_CHANNELS[1:],
        start_level=0,
        num_outs=5))

# mmdet's VOCMetric, with the data set's class names in its table
val_evaluator = dict(type='VOCClassNamesMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(
    constructor='DTLOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys=swin_presets.DECAY_EXEMPTIONS),
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))
