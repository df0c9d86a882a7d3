_base_ = '../_base_/retinanet_swin-l_fpn_voc0712.py'
# PETL baseline (paper Tables 8-10), sized as there
model = dict(backbone=dict(type='LoRASwinTransformer'))
