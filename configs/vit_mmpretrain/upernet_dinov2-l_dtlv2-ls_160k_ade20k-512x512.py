_base_ = '../_base_/upernet_dinov2-l_160k_ade20k-512x512.py'
# M = the middle block (the default; 7 of 12, 13 of 24); d' as the Swin
# ADE20K configs
model = dict(
    backbone=dict(type='DTLMMPretrainViT', variant='dtlv2-ls', rank=192))
