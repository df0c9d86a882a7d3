# The ViT demo on the toy ADE20K data (UperNet + MultiLevelNeck, CPU-sized)
# with a small mmpretrain ViT (12 blocks, 64 wide, patch 8, DINOv2's layer
# scale): the small ViT frozen: only neck and heads train. No pretrained
# weights exist for it (init_cfg=None).
_base_ = '../demo/upernet_vit-t_dtlv2-ls_toy-ade20k.py'
from dtl_mm.models import mmpretrain_vit_presets as vp  # noqa: E402 isort:skip

model = dict(
    backbone=dict(
        vp.TINY_VIT,
        type='PretrainedMMPretrainViT',
        frozen=True,
        _delete_=True))
