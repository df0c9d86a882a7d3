_base_ = '../_base_/cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
# frozen Swin: only neck and heads train
model = dict(backbone=dict(frozen=True))
