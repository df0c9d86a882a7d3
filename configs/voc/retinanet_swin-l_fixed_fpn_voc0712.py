_base_ = '../_base_/retinanet_swin-l_fpn_voc0712.py'
# frozen Swin: only neck and heads train
model = dict(backbone=dict(frozen=True))
