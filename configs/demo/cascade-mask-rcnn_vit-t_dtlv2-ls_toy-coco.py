# The COCO DTLv2-LS ViT config (a simple feature pyramid over the last
# block) with a small ViT (12 blocks, 64 wide, patch 8), on the toy data,
# heads and schedule of the Swin demo
# (cascade-mask-rcnn_swin-t_dtlv2-ls_toy-coco.py): CPU-sized.
_base_ = './cascade-mask-rcnn_swin-t_dtlv2-ls_toy-coco.py'
from dtl_mm.models import vit_presets  # noqa: E402 isort:skip

# MultiLevelNeck is mmseg's (registered by importing mmseg.models)
custom_imports = dict(imports=['dtl_mm', 'mmseg.models'])
model = dict(
    # no pretrained tiny ViT exists (init_cfg=None); the neck reads the
    # last block only
    backbone=dict(vit_presets.TINY_DTL_VIT, _delete_=True, out_indices=(11, )),
    neck=dict(
        _delete_=True,
        type='mmseg.MultiLevelNeck',
        in_channels=[vit_presets.TINY_VIT_WIDTH],
        out_channels=64,  # the Swin demo's FPN width
        scales=[4, 2, 1, 0.5, 0.25]))
