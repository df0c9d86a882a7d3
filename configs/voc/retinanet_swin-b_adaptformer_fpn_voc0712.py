_base_ = './retinanet_swin-l_adaptformer_fpn_voc0712.py'
model = dict(backbone={{_base_.swin_b}},
             neck=dict(in_channels={{_base_.swin_b_channels_1to3}}))
