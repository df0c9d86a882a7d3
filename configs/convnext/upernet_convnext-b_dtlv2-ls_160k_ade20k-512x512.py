_base_ = '../_base_/upernet_convnext-b_160k_ade20k-512x512.py'
# M = 19 of 36 blocks (the default: the middle block); d' as the Swin
# ADE20K configs
model = dict(backbone=dict(type='DTLConvNeXt', variant='dtlv2-ls', rank=192))
