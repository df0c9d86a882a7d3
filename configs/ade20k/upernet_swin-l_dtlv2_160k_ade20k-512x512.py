_base_ = '../_base_/upernet_swin-l_160k_ade20k-512x512.py'
model = dict(
    backbone=dict(type='DTLSwinTransformer', variant='dtlv2', rank=192))
