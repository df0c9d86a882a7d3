_base_ = '../_base_/cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
# PETL baseline (paper Tables 8-10), sized as there
model = dict(backbone=dict(type='LoRASwinTransformer'))
