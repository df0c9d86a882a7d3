_base_ = '../_base_/upernet_vit-b_160k_ade20k-512x512.py'
# frozen ViT: only neck and heads train
model = dict(backbone=dict(frozen=True))
