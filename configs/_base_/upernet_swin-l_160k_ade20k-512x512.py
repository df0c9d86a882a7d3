# UperNet + Swin-L on ADE20K: 512x512 crops, 160k iterations, AdamW 6e-5 /
# 0.01, 1500 warm-up iterations then poly, 2 images x 8 GPUs, auxiliary FCN
# head (mmseg's own Swin-L recipe). The `full` variant; configs/ade20k/
# change the backbone.
_base_ = [
    'mmseg::swin/swin-large-patch4-window7-in22k-pre_upernet_8xb2-160k_'
    'ade20k-512x512.py',
    './dtl_common.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='PretrainedSwinTransformer',
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        window_size=7,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/SwinTransformer/storage/releases/'
            'download/v1.0.0/swin_large_patch4_window7_224_22k.pth'),
        pretrain_img_size=224,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.3,
        patch_norm=True,
        use_abs_pos_embed=False,
        out_indices=(0, 1, 2, 3),
        with_cp=False))
optim_wrapper = dict(
    constructor='DTLOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={{_base_.swin_decay_exemptions}}))
