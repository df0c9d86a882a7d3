_base_ = '../_base_/upernet_swin-l_160k_ade20k-512x512.py'
# PETL baseline (paper Tables 8-10), sized as there
model = dict(backbone=dict(type='AdaptFormerSwinTransformer'))
