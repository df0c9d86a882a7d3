_base_ = './cascade-mask-rcnn_swin-b_adapter_fpn_3x_coco.py'
model = dict(backbone={{_base_.swin_l}},
             neck=dict(in_channels={{_base_.swin_l_channels}}))
