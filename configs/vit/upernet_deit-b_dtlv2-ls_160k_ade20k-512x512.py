_base_ = '../_base_/upernet_deit-b_160k_ade20k-512x512.py'
# M = 7 of 12 blocks (the default: the middle block); d' as the Swin
# ADE20K configs
model = dict(
    backbone=dict(type='DTLVisionTransformer', variant='dtlv2-ls', rank=192))
